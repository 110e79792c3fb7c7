// The websocket feature: proxies upgrades on routes with `websocket #true` (RFC 6455 relay and
// frame inspection, src/websocket). Registered only when a route allows WebSocket; without it the
// core answers upgrades with 403 before they reach a proxy.
import { defineFeature, DECORATION, type WebSocketRuntime } from '../../src/pipeline/feature.ts';
import { proxyWebSocket } from '../../src/websocket/proxy.ts';

export const websocketFeature = defineFeature({
  name: 'websocket',
  dependencies: ['forwarding'],
  uses: (config) => config.routes.some((r) => r.websocket),
  register(app) {
    const runtime: WebSocketRuntime = { proxy: proxyWebSocket };
    app.decorate(DECORATION.websocket, runtime);
  },
});

export default websocketFeature;
