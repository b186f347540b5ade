export declare function payload(i: number): Uint8Array;
