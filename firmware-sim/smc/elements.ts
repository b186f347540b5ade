/**
 * The changer's elements (SMC-3 4.2): what exists at each element address. Addresses are
 * fixed when the library is built; what an element holds lives in the changer model.
 */

/** Element type codes as SMC-3 numbers them (READ ELEMENT STATUS, mode page 1Dh). */
export const ElementKind = {
  transport: 1,
  storage: 2,
  importExport: 3,
  dataTransfer: 4,
} as const;
export type ElementKind = (typeof ElementKind)[keyof typeof ElementKind];

export const elementKindName: Record<ElementKind, string> = {
  [ElementKind.transport]: 'medium transport',
  [ElementKind.storage]: 'storage',
  [ElementKind.importExport]: 'import/export',
  [ElementKind.dataTransfer]: 'data transfer',
};

/** Short names used in move hook environment variables and logs. */
export const elementKindTag: Record<ElementKind, string> = {
  [ElementKind.transport]: 'transport',
  [ElementKind.storage]: 'storage',
  [ElementKind.importExport]: 'import-export',
  [ElementKind.dataTransfer]: 'drive',
};

export interface ElementInfo {
  readonly address: number;
  readonly kind: ElementKind;
  /** Position within its kind, from 0 (slot 1 is index 0). */
  readonly index: number;
}

/** Addresses of each element type, in the order the library numbers them. */
export interface ElementLayout {
  readonly transport: readonly number[];
  readonly storage: readonly number[];
  readonly importExport: readonly number[];
  readonly dataTransfer: readonly number[];
}

export class ElementMap {
  private readonly byAddress = new Map<number, ElementInfo>();
  private readonly sorted: ElementInfo[];
  private readonly byKind = new Map<ElementKind, ElementInfo[]>();

  constructor(readonly layout: ElementLayout) {
    const add = (kind: ElementKind, list: readonly number[]): void => {
      const infos = list.map((address, index) => ({ address, kind, index }));
      for (const e of infos) {
        if (!Number.isInteger(e.address) || e.address < 0 || e.address > 0xffff) throw new RangeError(`element address ${e.address} is outside 0..0xFFFF`);
        if (this.byAddress.has(e.address)) throw new RangeError(`element address 0x${e.address.toString(16)} is used twice`);
        this.byAddress.set(e.address, e);
      }
      this.byKind.set(kind, [...infos].sort((a, b) => a.address - b.address));
    };
    add(ElementKind.transport, layout.transport);
    add(ElementKind.storage, layout.storage);
    add(ElementKind.importExport, layout.importExport);
    add(ElementKind.dataTransfer, layout.dataTransfer);
    if (layout.transport.length === 0) throw new RangeError('a changer has at least one medium transport element');
    this.sorted = [...this.byAddress.values()].sort((a, b) => a.address - b.address);
  }

  get(address: number): ElementInfo | undefined {
    return this.byAddress.get(address);
  }

  /** Elements of one kind in ascending address order. */
  ofKind(kind: ElementKind): readonly ElementInfo[] {
    return this.byKind.get(kind) ?? [];
  }

  /** Every element in ascending address order. */
  all(): readonly ElementInfo[] {
    return this.sorted;
  }

  /** Lowest address of a kind and how many there are (mode page 1Dh). */
  range(kind: ElementKind): { first: number; count: number } {
    const list = this.ofKind(kind);
    return { first: list[0]?.address ?? 0, count: list.length };
  }

  /** The default medium transport (address 0 in a CDB means this one). */
  get defaultTransport(): number {
    return this.ofKind(ElementKind.transport)[0]?.address ?? 0;
  }
}
