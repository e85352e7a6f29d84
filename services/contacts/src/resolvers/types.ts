import type { ContactsDeps } from '../contacts';
import type { ContactRow } from '../db/database';

export interface ResolverDeps extends ContactsDeps {
  /** Dormancy thresholds in days (DORMANCY_THRESHOLDS). */
  thresholds: number[];
  /** Batches contact lookups by id made in the same tick. */
  loadContact: (id: string) => Promise<ContactRow | undefined>;
}
