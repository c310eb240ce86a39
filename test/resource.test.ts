import { describe, expect, it } from 'vitest';

import { DisposedError, NativeResource } from '../src/index.js';
import { runNode } from './helpers.js';

// A minimal owner of a released-once handle, to test the base class every native-memory class extends.
class Owner extends NativeResource<{ id: number }> {
  static released: number[] = [];
  constructor(id: number) {
    super({ id }, (h) => Owner.released.push(h.id));
  }
  get id(): number {
    return this.handle.id;
  }
}

describe('NativeResource', () => {
  it('dispose releases once, then use throws DisposedError', () => {
    const o = new Owner(1);
    expect(o.id).toBe(1);
    expect(o.disposed).toBe(false);
    o.dispose();
    o.dispose();
    expect(Owner.released.filter((x) => x === 1)).toEqual([1]);
    expect(o.disposed).toBe(true);
    expect(() => o.id).toThrow(DisposedError);
    expect(() => o.id).toThrow('Owner has been disposed');
  });

  it('Symbol.dispose is dispose', () => {
    const o = new Owner(2);
    o[Symbol.dispose]();
    expect(Owner.released).toContain(2);
    expect(o.disposed).toBe(true);
  });

  it('the FinalizationRegistry releases what was never disposed, and not what was', () => {
    const script = `
      const { NativeResource } = require('./dist/index.js');
      const released = [];
      class Owner extends NativeResource { constructor(id) { super({ id }, (h) => released.push(h.id)); } }
      (function () { new Owner(1); const kept = new Owner(2); kept.dispose(); })();
      let rounds = 0;
      (function wait() {
        global.gc();
        if (released.includes(1) || ++rounds > 50) { console.log(JSON.stringify(released.sort())); return; }
        setTimeout(wait, 10);
      })();`;
    const r = runNode(script, {}, ['--expose-gc']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([1, 2]);
  });
});
