// A GET route's HEAD and an exact path's spelling one trailing `/` apart (session 31 audit) yield to
// a route that claims that request itself: a route naming HEAD, a route whose exact path is the
// request's own spelling. Without RouteYield the first route in order took both (a `path "/api"`
// listed before `path "/api/"` took `/api/` past the second route's agents and limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../../src/config/load.ts';
import { matchRoute, requestMatchInput } from '../../../src/routing/match.ts';

const CONFIG = `
schema-version "1.0"
listeners {
    listener "public" {
        address "127.0.0.1:0"
        protocol "http"
    }
}
routes {
    route "api" {
        matches { path "/api" }
        builtin-handler "health"
    }
    route "api-slash" {
        matches { path "/api/" }
        builtin-handler "health"
    }
    route "login" {
        matches { path "/login" }
        builtin-handler "health"
    }
    route "reports" {
        matches {
            path "/reports"
            method "GET"
        }
        builtin-handler "health"
    }
    route "reports-head" {
        matches {
            path "/reports"
            method "HEAD"
        }
        builtin-handler "health"
    }
    route "docs" {
        matches {
            path "/docs"
            method "GET"
        }
        builtin-handler "health"
    }
    route "docs-head-elsewhere" {
        matches {
            path "/other"
            method "HEAD"
        }
        builtin-handler "health"
    }
}
`;

test('wider readings yield to the route that claims the request itself, whatever the order', () => {
  const config = loadConfigText(CONFIG);
  const routes = config.routesByListener.get('public')!;
  const cases: [method: string, path: string, route: string | undefined][] = [
    ['GET', '/api', 'api'],
    ['GET', '/api/', 'api-slash'], // its own route, though "api" comes first and reads /api/ too
    ['GET', '/login/', 'login'], // no route claims /login/: the audit's reading stands
    ['GET', '/reports', 'reports'],
    ['HEAD', '/reports', 'reports-head'], // the route naming HEAD keeps it
    ['HEAD', '/docs', 'docs'], // the HEAD-naming route elsewhere does not match /docs: GET's reading stands
    ['HEAD', '/other', 'docs-head-elsewhere'],
    ['POST', '/docs', undefined],
  ];
  for (const [method, path, expected] of cases) {
    const got = matchRoute(routes, requestMatchInput(method, path, '', 'a.test', { host: 'a.test' }));
    assert.equal(got?.id, expected, `${method} ${path}`);
  }
});
