// The result of parsing bytes from the network. Parsers return one of these and never throw.

export const Status = {
  /** The bytes form a valid packet of this protocol. */
  Ok: 0,
  /** Fewer bytes than the header or a length field requires. */
  Truncated: 1,
  /** A field holds a value the protocol forbids (bad version, length below minimum, ...). */
  Malformed: 2,
  /** A checksum did not verify. */
  Checksum: 3,
  /** Valid, but uses a feature this codec does not handle. */
  Unsupported: 4,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export const STATUS_NAMES: readonly string[] = ['ok', 'truncated', 'malformed', 'checksum', 'unsupported'];

/** Names a status for counters and logs. */
export function statusName(s: Status): string {
  return STATUS_NAMES[s] ?? 'unknown';
}
