import { runService } from '@textloop/service-kit';
import { migrations } from './db/migrations';
import { createServer } from './server';

await runService({ name: 'scheduling', migrations, streams: ['SCHEDULING'], create: createServer });
