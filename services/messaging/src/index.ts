import { runService } from '@textloop/service-kit';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

// CONTACTS belongs to contacts; ensuring it here as well (same definition, created only when
// missing) lets messaging start first without its contact projection consumer failing.
await runService<Database>({ name: 'messaging', migrations, streams: ['MESSAGING', 'CONTACTS'], create: createServer });
