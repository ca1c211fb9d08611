// Counters of a DNS responder and the servers hosting it: plain numbers, one per outcome, read by
// the daemon's status and metrics. Every query lands in exactly one of the outcome counters.

export class DnsCounters {
  /** Messages handed to the responder. */
  queries = 0;
  /** NOERROR with at least one record in the answer section. */
  answered = 0;
  /** NOERROR with no answer: the name exists but not with the type asked (NODATA). */
  noData = 0;
  /** NXDOMAIN: no such name under one of our zones. */
  nxDomain = 0;
  /** REFUSED: a name outside our zones (no upstream), or a class other than IN. */
  refused = 0;
  /** FORMERR: a query we could not read (bad question, several questions, bad EDNS). */
  formErr = 0;
  /** NOTIMP: an opcode other than QUERY. */
  notImp = 0;
  /** BADVERS: an EDNS version other than 0. */
  badVers = 0;
  /** Queries outside our zones handed to the upstream forwarder. */
  forwarded = 0;
  /** Messages not answered at all: shorter than a header, responses (QR set), no room to reply. */
  dropped = 0;
  /** Answers that did not fit the client's UDP size: sent with TC set and no records
   * (counted in `answered` too). */
  truncated = 0;
  /** AAAA records synthesized by the DNS64 hook (counted in `answered` too). */
  synthesized = 0;

  // ---- servers and the forwarder ----
  /** Replies the socket failed to send. */
  sendErrors = 0;
  /** Queries dropped because every reply buffer was still in flight. */
  busy = 0;
  /** Upstream replies relayed to clients. */
  upstreamReplies = 0;
  /** Forwarded queries the upstream did not answer in time (the client gets SERVFAIL). */
  upstreamTimeouts = 0;
  /** Upstream datagrams that matched no pending query, or did not echo its question. */
  upstreamMismatched = 0;
  /** Queries not forwarded because too many were pending (the client gets SERVFAIL). */
  upstreamOverload = 0;

  /** The counters as a plain object. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this)) out[k] = v as number;
    return out;
  }
}
