/**
 * A small seedable random generator whose whole state is one 32-bit integer, so it can be saved in a
 * checkpoint and restored exactly (mulberry32).
 */
export class SeededRandom {
  /** The generator's state; save it and pass it to the constructor to continue the same sequence. */
  state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`SeededRandom: seed must be a finite number, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Hashes several integers into one 32-bit seed (order matters). */
  static mix(...parts: number[]): number {
    let h = 0x811c9dc5;
    for (const p of parts) {
      h = Math.imul(h ^ (p >>> 0), 0x01000193);
      h ^= h >>> 15;
      h = Math.imul(h, 0x2c1b3c6d);
      h ^= h >>> 12;
    }
    return h >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A standard normal sample (Box-Muller from two uniform draws; the cosine output only). */
  normal(): number {
    const u1 = this.next() || Number.MIN_VALUE;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.next());
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }
}

/** A seeded uniform generator in [0, 1) as a plain function (the same sequence as {@link SeededRandom}). */
export function seededUniform(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.next();
}
