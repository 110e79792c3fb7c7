// Pure: a failed handshake's error -> a low-cardinality reason label for
// sentinel_tls_handshake_failures_total{reason}.

const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/ERR_TLS_HANDSHAKE_TIMEOUT|handshake timeout/i, 'timeout'],
  [/ECONNRESET|socket hang up|EPIPE/i, 'client_reset'],
  [/http request/i, 'plain_http'],
  [/peer did not return a certificate|certificate required/i, 'client_cert_missing'],
  [/certificate (has )?expired|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|not yet valid/i, 'client_cert_expired'],
  [/unknown ca|unable to get (local )?issuer|UNABLE_TO_GET_ISSUER|SELF_SIGNED|self[- ]signed|certificate verify failed|UNABLE_TO_VERIFY|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_CHAIN_TOO_LONG|INVALID_CA|INVALID_PURPOSE/i, 'client_cert_untrusted'],
  [/bad certificate|unsupported certificate|certificate revoked/i, 'client_cert_bad'],
  [/unsupported protocol|version too low|version too high|protocol version/i, 'protocol_version'],
  [/no shared cipher|no cipher match|handshake failure|no suitable signature|inappropriate fallback/i, 'no_shared_cipher'],
  [/no application protocol|alpn/i, 'alpn'],
  [/unknown protocol|wrong version number|packet length too long|record layer failure|unexpected eof|unexpected message|decode error|bad record/i, 'malformed'],
];

export function classifyHandshakeError(err: { code?: string; message?: string; reason?: string } | undefined): string {
  const text = `${err?.code ?? ''} ${err?.reason ?? ''} ${err?.message ?? ''}`;
  for (const [re, reason] of RULES) if (re.test(text)) return reason;
  return 'other';
}
