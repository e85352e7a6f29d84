export * from './envelope';
export * from './subjects';
export * from './streams';
export * from './jetstream';
export * from './rpc';
