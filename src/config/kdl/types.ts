// The parsed form of a KDL document. The shape is the one kdljs produced (so the decoder did not have
// to change), plus `position`, which kdljs never had.

/** A KDL value. Numbers are IEEE doubles: integers beyond 2^53 lose precision, as they did with kdljs. */
export type KdlValue = string | number | boolean | null;

/** Type annotations, `(tag)`: on the node name, per argument (same index) and per property key. */
export interface KdlTags {
  name: string | undefined;
  values: Array<string | undefined>;
  properties: Record<string, string | undefined>;
}

/** 1-based line and column (in code points) where the node starts (its type annotation, else its name). */
export interface KdlPosition {
  line: number;
  column: number;
}

export interface KdlNode {
  name: string;
  values: KdlValue[];
  /** Last occurrence of a key wins, as the spec says. */
  properties: Record<string, KdlValue>;
  children: KdlNode[];
  tags: KdlTags;
  position: KdlPosition;
}
