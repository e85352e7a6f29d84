# One image for every Textloop process; SERVICE picks which one runs.
FROM node:20-bookworm-slim
RUN npm i -g pnpm@12.4.2
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml turbo.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY supergraph.graphql ./
RUN pnpm install --frozen-lockfile
ENV NODE_ENV=production HOST=0.0.0.0 SERVICE=gateway
CMD ["sh", "-c", "exec node_modules/.bin/tsx services/$SERVICE/src/index.ts"]
