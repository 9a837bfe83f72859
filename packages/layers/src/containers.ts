import { Module } from './module.js';

/** An ordered list of modules named '0', '1', ... (PyTorch `nn.ModuleList` / `nn.Sequential` names). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  push(m: M): M {
    this.items.push(this.addModule(String(this.items.length), m));
    return m;
  }

  get length(): number {
    return this.items.length;
  }
}

/** Modules under explicit string keys (PyTorch `nn.ModuleDict`), in insertion order. */
export class ModuleDict<M extends Module> extends Module {
  private readonly byKey = new Map<string, M>();

  set(key: string, m: M): M {
    this.byKey.set(key, this.addModule(key, m));
    return m;
  }

  get(key: string): M | undefined {
    return this.byKey.get(key);
  }

  values(): M[] {
    return [...this.byKey.values()];
  }
}
