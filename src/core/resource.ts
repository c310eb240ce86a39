// The lifetime convention of every class that owns native memory: dispose() (idempotent), [Symbol.dispose] for
// `using`, a clear error when used after disposal, and a FinalizationRegistry that releases the memory if the
// owner is garbage-collected without being disposed.

/** Thrown when a disposed object is used. */
export class DisposedError extends Error {
  readonly code = 'ERR_TESSERA_DISPOSED';
  constructor(what: string) {
    super(`${what} has been disposed`);
    this.name = 'DisposedError';
  }
}

interface Held<H> {
  handle: H;
  release: (handle: H) => void;
}

// The registry holds the handle and its release function, never the owner: it must not keep the owner alive.
const registry = new FinalizationRegistry<Held<unknown>>((held) => {
  try {
    held.release(held.handle);
  } catch {
    // A finalizer has nobody to report to; the native side frees its memory in its own finalizer regardless.
  }
});

export abstract class NativeResource<H extends object> implements Disposable {
  #handle: H | undefined;
  #release: (handle: H) => void;

  protected constructor(handle: H, release: (handle: H) => void) {
    this.#handle = handle;
    this.#release = release;
    registry.register(this, { handle, release } as Held<unknown>, this);
  }

  /** The native handle; throws DisposedError after dispose(). */
  protected get handle(): H {
    if (this.#handle === undefined) throw new DisposedError(this.constructor.name);
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** Frees the native memory now. Calling it again does nothing. */
  dispose(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    registry.unregister(this);
    this.#release(handle);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
