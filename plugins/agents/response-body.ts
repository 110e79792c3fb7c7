// Response body inspection for agents subscribed to `response_body` (sentinel-reference.md §1.10
// response-body-mode, §2.3 ResponseBodyChunk). One inspector per response, driven by the core's
// ResponseBodyHandler contract (src/pipeline/types.ts):
//
//  * buffer agents (and hybrid:<n> when Content-Length <= n): the body is held (the response
//    headers with it) up to the agent's max-response-body-bytes, sent as one chunk (decoded when
//    Content-Encoding is gzip/deflate/br and `decompress` is on, under the same bomb caps as
//    request bodies), and the decision is applied before the headers go out: a block becomes the
//    client's response, header ops and a body replacement apply to the real response.
//  * stream agents: every chunk is sent as it arrives and forwarded once the agents answered (a
//    single gzip/deflate/br coding is decoded incrementally under the same caps, so the agent
//    sees plain bytes); the headers are already out, so a block can only cut the connection,
//    header ops are ignored, and a replacement replaces that chunk (not possible for a decoded
//    stream: the replacement would have to be re-encoded into the client's compressed stream,
//    so it is refused and logged).
// Larger-than-limit bodies: fail-closed -> 502 (the upstream's answer cannot be vetted; 413 would
// blame the client's request), fail-open -> the agent is skipped and the bytes pass unchanged.
import type { LocalResponse, RequestContext, ResponseBodyHandler, UpstreamResponseInfo } from '../../src/pipeline/types.ts';
import { MessageType } from '../../src/agent-protocol/frames.ts';
import type { ResponseBodyChunkEvent } from '../../src/agent-protocol/messages.ts';
import { StreamingDecoder, contentCodings, decompressBounded, encodingLabel } from './body-inspection.ts';
import type { BodyPolicy } from './definition.ts';
import type { AgentFilter, Member } from './filter.ts';
import { applyAgentHeaderOps } from './header-ops.ts';

const EMPTY = Buffer.alloc(0);

function tooLarge(): LocalResponse {
  return { status: 502, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Bad Gateway: response body too large for inspection', blockReason: 'response_body_size_exceeded' };
}

function uninspectable(): LocalResponse {
  return { status: 502, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Bad Gateway: response body could not be decoded for inspection', blockReason: 'response_decompression_failed' };
}

export class ResponseBodyInspector implements ResponseBodyHandler {
  readonly holdHeaders: boolean;
  private buffered: Member[];
  private streaming: Member[];
  private held: Buffer[] = [];
  private heldBytes = 0;
  private streamIndex = 0;
  private streamBytes = 0;
  /** stream mode over a compressed body: the incremental decoder (undefined = raw bytes) */
  private streamDecoder: StreamingDecoder | undefined;
  /** fail-closed agent whose declared body is already known to be too large */
  private refuse: LocalResponse | undefined;
  private aborted = false;

  constructor(
    private readonly filter: AgentFilter,
    private readonly ctx: RequestContext,
    private readonly res: UpstreamResponseInfo,
    members: Member[],
    private readonly cid: string,
    private readonly policy: BodyPolicy,
  ) {
    const cl = res.headers['content-length'];
    this.declared = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : undefined;
    const metrics = filter.agentMetrics;
    const buffered: Member[] = [];
    const streaming: Member[] = [];
    for (const m of members) {
      const mode = m.def.responseBodyMode;
      const buffer = mode.kind === 'buffer' || (mode.kind === 'hybrid' && this.declared !== undefined && this.declared <= mode.bufferBytes);
      if (!buffer) streaming.push(m);
      else if (this.declared === undefined || this.declared <= m.def.maxResponseBodyBytes) buffered.push(m);
      else if (filter.failureModeOf(ctx, m) === 'closed') this.refuse ??= tooLarge();
      else metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
    }
    this.buffered = buffered;
    this.streaming = streaming;
    if (streaming.length > 0 && policy.decompress) {
      this.streamDecoder = StreamingDecoder.for(contentCodings(res.headers['content-encoding']), { maxRatio: policy.maxDecompressionRatio, maxBytes: policy.maxDecompressedBytes });
    }
    this.holdHeaders = buffered.length > 0 || this.refuse !== undefined;
  }

  private readonly declared: number | undefined;

  async onChunk(chunk: Buffer, isLast: boolean): Promise<Buffer | undefined | LocalResponse> {
    if (this.refuse) return this.refuse;
    let data = chunk;
    if (this.streaming.length > 0 && (chunk.length > 0 || isLast)) {
      const r = await this.streamChunk(chunk, isLast);
      if (r === undefined) return undefined; // aborted
      if (!Buffer.isBuffer(r)) return r;
      data = r;
    }
    if (this.buffered.length === 0) return data;
    this.held.push(data);
    this.heldBytes += data.length;
    const over = this.buffered.filter((m) => this.heldBytes > m.def.maxResponseBodyBytes);
    if (over.length > 0) {
      if (over.some((m) => this.filter.failureModeOf(this.ctx, m) === 'closed')) return this.release(tooLarge());
      for (const m of over) this.filter.agentMetrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
      this.buffered = this.buffered.filter((m) => !over.includes(m));
      if (this.buffered.length === 0) return this.release(undefined);
    }
    if (!isLast) return EMPTY;
    return this.finishBuffered();
  }

  abort(): void {
    this.aborted = true;
    this.streamDecoder?.destroy();
    this.held = [];
    this.heldBytes = 0;
  }

  /** Hands back the held bytes (or `local` instead) and stops buffering. */
  private release(local: LocalResponse | undefined): Buffer | LocalResponse {
    const out = Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    this.buffered = [];
    return local ?? out;
  }

  private async finishBuffered(): Promise<Buffer | LocalResponse> {
    const raw = Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    const metrics = this.filter.agentMetrics;
    metrics.bufferedBytes.observe({ route: this.ctx.routeId ?? '' }, raw.length);
    let members = this.buffered;
    this.buffered = [];
    let inspected: Buffer = raw;
    let decoded = false;
    const codings = contentCodings(this.res.headers['content-encoding']);
    if (codings.length > 0 && this.policy.decompress && raw.length > 0) {
      const r = await decompressBounded(raw, codings, { maxRatio: this.policy.maxDecompressionRatio, maxBytes: this.policy.maxDecompressedBytes });
      const encoding = encodingLabel(codings);
      metrics.decompression.inc({ encoding, result: r.ok ? 'ok' : r.reason });
      if (!r.ok) {
        // Never expanded past the cap. The client gets the upstream's bytes only if nobody insists on inspection.
        if (members.some((m) => this.filter.failureModeOf(this.ctx, m) === 'closed')) return uninspectable();
        for (const m of members) metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
        return raw;
      }
      metrics.decompressionRatio.observe(r.data.length / Math.max(1, raw.length));
      inspected = r.data;
      decoded = true;
    }
    const kept: Member[] = [];
    for (const m of members) {
      if (inspected.length <= m.def.maxResponseBodyBytes) kept.push(m);
      else if (this.filter.failureModeOf(this.ctx, m) === 'closed') return tooLarge();
      else metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
    }
    members = kept;
    if (members.length === 0 || this.aborted) return raw;
    const event: ResponseBodyChunkEvent = {
      correlation_id: this.cid,
      data: inspected.toString('base64'),
      is_last: true,
      total_size: inspected.length,
      chunk_index: 0,
      bytes_sent: inspected.length,
    };
    const merged = await this.filter.fanOut(this.ctx, members, MessageType.ResponseBodyChunk, 'response_body_chunk', this.cid, event, (m) => m.settings.timeoutMs ?? m.def.timeoutMs);
    if (merged.response) return merged.response;
    // The headers are still held: the agents' response header ops apply to the real response.
    applyAgentHeaderOps(this.res.headers, merged.responseOps);
    const mutation = merged.responseBodyMutation;
    if (mutation === undefined) return raw;
    // A replacement is plain bytes: if the agents saw the body decoded, the coding no longer applies.
    if (decoded) delete this.res.headers['content-encoding'];
    return mutation === 'drop' ? EMPTY : mutation;
  }

  /** Stream mode: one ResponseBodyChunk event per upstream chunk; undefined when aborted. */
  private async streamChunk(chunk: Buffer, isLast: boolean): Promise<Buffer | LocalResponse | undefined> {
    if (this.aborted) return undefined;
    let data = chunk;
    const decoder = this.streamDecoder;
    if (decoder) {
      const r = await decoder.push(chunk, isLast);
      const encoding = encodingLabel(contentCodings(this.res.headers['content-encoding']));
      if (!r.ok) {
        this.filter.agentMetrics.decompression.inc({ encoding, result: r.reason });
        this.streamDecoder = undefined;
        if (this.streaming.some((m) => this.filter.failureModeOf(this.ctx, m) === 'closed')) return uninspectable();
        for (const m of this.streaming) this.filter.agentMetrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
        this.streaming = [];
        return chunk;
      }
      if (isLast) this.filter.agentMetrics.decompression.inc({ encoding, result: 'ok' });
      data = r.data;
      // Nothing decodable yet: forward the bytes, tell the agent with a later chunk.
      if (data.length === 0 && !isLast) return chunk;
    }
    this.streamBytes += data.length;
    const event: ResponseBodyChunkEvent = {
      correlation_id: this.cid,
      data: data.toString('base64'),
      is_last: isLast,
      total_size: isLast ? this.streamBytes : decoder ? null : (this.declared ?? null),
      chunk_index: this.streamIndex++,
      bytes_sent: this.streamBytes,
    };
    const merged = await this.filter.fanOut(this.ctx, this.streaming, MessageType.ResponseBodyChunk, 'response_body_chunk', this.cid, event, (m) => m.def.chunkTimeoutMs);
    if (merged.response) return merged.response;
    if (this.holdHeaders && this.buffered.length > 0) applyAgentHeaderOps(this.res.headers, merged.responseOps);
    const mutation = merged.responseBodyMutation;
    if (mutation === undefined) return chunk;
    if (decoder) {
      this.ctx.log.warn({ agents: this.streaming.map((m) => m.def.id) }, 'response body mutation ignored: a decoded compressed stream cannot be rewritten after its headers went out');
      return chunk;
    }
    return mutation === 'drop' ? EMPTY : mutation;
  }
}
