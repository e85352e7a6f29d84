/**
 * Collects the keys asked for in the same tick and loads them with one query: resolving
 * Message.template or Message.statusHistory for 50 messages costs one round trip, not 50.
 */
export function batchLoader<K, V>(loadMany: (keys: K[]) => Promise<Map<K, V>>): (key: K) => Promise<V | undefined> {
  let queue: Array<{ key: K; resolve: (v: V | undefined) => void; reject: (e: unknown) => void }> = [];
  const flush = async () => {
    const batch = queue;
    queue = [];
    try {
      const found = await loadMany([...new Set(batch.map((b) => b.key))]);
      for (const b of batch) b.resolve(found.get(b.key));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  };
  return (key) =>
    new Promise((resolve, reject) => {
      if (queue.length === 0) setImmediate(() => void flush());
      queue.push({ key, resolve, reject });
    });
}
