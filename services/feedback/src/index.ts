import { runService } from '@textloop/service-kit';
import { migrations } from './db/migrations';
import { createServer } from './server';

await runService({ name: 'feedback', migrations, streams: ['FEEDBACK'], create: createServer });
