/*
 * openloop: a fixed-rate (open-loop) HTTP/1.1 load generator for bench/run.ts.
 *
 * Request i is *scheduled* at t0 + i/rate, whatever happened to earlier requests. It is sent on
 * the first idle keep-alive connection; when none is idle it waits in a backlog. Its latency is
 * measured from the scheduled time to the last byte of the response, so time spent queued
 * behind a slow proxy counts (no coordinated omission). Single thread, epoll + a timerfd with
 * nanosecond deadlines, so the generator itself adds microseconds, not milliseconds.
 *
 * Usage: openloop -h HOST -p PORT -u PATH -r RATE -d SECONDS [-w WARMUP_S] [-c CONNS]
 *                 [-t DRAIN_S] [-H "Name: value"]...
 * Prints one JSON object on stdout. Requests scheduled during the warm-up are sent but not
 * recorded. Requests still unfinished when the drain timeout ends are recorded with their age
 * at that moment (a lower bound) and counted in "unfinished". "achieved_rps" counts every response
 * that arrived during the measured window, so a saturated proxy shows its real throughput.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP 65536
#define MAX_EXTRA_HEADERS 16
#define RECONNECT_DELAY_NS 10000000LL

enum conn_state { C_DEAD, C_CONNECTING, C_IDLE, C_BUSY };
enum parse_state { P_HEADERS, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_TRAILER };

typedef struct {
  int fd;
  enum conn_state state;
  enum parse_state pstate;
  int64_t sched_ns;     /* scheduled time of the in-flight request */
  int64_t req_index;    /* index of the in-flight request */
  int64_t retry_at_ns;  /* when a dead connection may reconnect */
  size_t wrote;         /* bytes of the request already written */
  int64_t remaining;    /* body / chunk bytes still expected */
  int close_after;      /* server said Connection: close */
  int status;
  size_t len;
  char buf[BUF_CAP];
} conn_t;

static struct sockaddr_in target;
static char *request_text;
static size_t request_len;
static int epfd;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Measurement state. */
static int64_t t0, warmup_end, sched_end;
static double rate;
static int64_t *samples;
static size_t nsamples, samples_cap;
static long long completed, errors, non2xx, unfinished, measured_scheduled;
/* Responses that arrived inside the measured window, whenever they were scheduled: the
 * throughput actually achieved, also when a saturated proxy is still serving the warm-up backlog. */
static long long window_done;

static int64_t sched_of(int64_t i) { return t0 + (int64_t)((double)i * 1e9 / rate); }

static void record(int64_t sched, int64_t done) {
  if (sched < warmup_end) return;
  if (nsamples < samples_cap) samples[nsamples++] = done - sched;
}

static void conn_close(conn_t *c, int64_t now) {
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->state = C_DEAD;
  c->retry_at_ns = now + RECONNECT_DELAY_NS;
}

static void conn_fail(conn_t *c, int64_t now) {
  if (c->state == C_BUSY && c->sched_ns >= warmup_end) errors++;
  conn_close(c, now);
}

static void conn_open(conn_t *c, int64_t now) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { c->retry_at_ns = now + RECONNECT_DELAY_NS; return; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->len = 0;
  c->pstate = P_HEADERS;
  int rc = connect(fd, (struct sockaddr *)&target, sizeof target);
  if (rc < 0 && errno != EINPROGRESS) { conn_close(c, now); errors++; return; }
  c->state = C_CONNECTING;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void want_write(conn_t *c, int on) {
  struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_request(conn_t *c, int64_t now) {
  while (c->wrote < request_len) {
    ssize_t n = write(c->fd, request_text + c->wrote, request_len - c->wrote);
    if (n > 0) { c->wrote += (size_t)n; continue; }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { want_write(c, 1); return; }
    conn_fail(c, now);
    return;
  }
}

static void send_on(conn_t *c, int64_t index, int64_t now) {
  c->state = C_BUSY;
  c->req_index = index;
  c->sched_ns = sched_of(index);
  c->wrote = 0;
  c->status = 0;
  c->close_after = 0;
  c->pstate = P_HEADERS;
  flush_request(c, now);
}

static void consume(conn_t *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

static char *find_crlf(char *p, size_t len) { return memmem(p, len, "\r\n", 2); }

/* Header value equality/containment, case-insensitive, within one header line. */
static int header_is(const char *line, size_t len, const char *name) {
  size_t n = strlen(name);
  return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int line_contains(const char *line, size_t len, const char *word) {
  size_t w = strlen(word);
  for (size_t i = 0; i + w <= len; i++)
    if (strncasecmp(line + i, word, w) == 0) return 1;
  return 0;
}

/* Returns 1 when a full response was consumed, 0 when more bytes are needed, -1 on error. */
static int parse_step(conn_t *c) {
  for (;;) {
    switch (c->pstate) {
    case P_HEADERS: {
      char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
      if (!end) return c->len == BUF_CAP ? -1 : 0;
      size_t hlen = (size_t)(end - c->buf) + 4;
      if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
      c->status = atoi(c->buf + 9);
      int64_t clen = -1;
      int chunked = 0;
      char *line = find_crlf(c->buf, hlen) + 2;
      while (line < end) {
        char *eol = find_crlf(line, (size_t)(end + 2 - line));
        size_t llen = (size_t)(eol - line);
        if (header_is(line, llen, "content-length")) clen = atoll(line + 15);
        else if (header_is(line, llen, "transfer-encoding") && line_contains(line, llen, "chunked")) chunked = 1;
        else if (header_is(line, llen, "connection") && line_contains(line, llen, "close")) c->close_after = 1;
        line = eol + 2;
      }
      consume(c, hlen);
      if (chunked) c->pstate = P_CHUNK_SIZE;
      else if (clen > 0) { c->remaining = clen; c->pstate = P_BODY; }
      else return 1; /* no body (our origins always send a length) */
      break;
    }
    case P_BODY:
    case P_CHUNK_DATA: {
      size_t take = c->len < (size_t)c->remaining ? c->len : (size_t)c->remaining;
      consume(c, take);
      c->remaining -= (int64_t)take;
      if (c->remaining > 0) return 0;
      if (c->pstate == P_BODY) return 1;
      c->pstate = P_CHUNK_SIZE;
      break;
    }
    case P_CHUNK_SIZE: {
      char *eol = find_crlf(c->buf, c->len);
      if (!eol) return c->len == BUF_CAP ? -1 : 0;
      long long size = strtoll(c->buf, NULL, 16);
      consume(c, (size_t)(eol - c->buf) + 2);
      if (size == 0) c->pstate = P_CHUNK_TRAILER;
      else { c->remaining = size + 2; c->pstate = P_CHUNK_DATA; }
      break;
    }
    case P_CHUNK_TRAILER: {
      char *eol = find_crlf(c->buf, c->len);
      if (!eol) return c->len == BUF_CAP ? -1 : 0;
      size_t llen = (size_t)(eol - c->buf);
      consume(c, llen + 2);
      if (llen == 0) return 1;
      break;
    }
    }
  }
}

static conn_t *conns;
static int nconns;
static int64_t next_to_send; /* lowest request index not yet sent */

/* How many requests are due by `now`: those with sched_of(i) <= now and before sched_end. */
static int64_t due_count(int64_t now) {
  int64_t lim = now + 1 < sched_end ? now + 1 : sched_end;
  if (lim <= t0) return 0;
  int64_t n = (int64_t)((double)(lim - t0) * rate / 1e9);
  while (n > 0 && sched_of(n - 1) >= lim) n--;
  while (sched_of(n) < lim) n++;
  return n;
}

static void dispatch(int64_t now) {
  int64_t due = due_count(now);
  for (int k = 0; k < nconns && next_to_send < due; k++) {
    conn_t *c = &conns[k];
    if (c->state == C_DEAD && now >= c->retry_at_ns) conn_open(c, now);
    if (c->state == C_IDLE) send_on(c, next_to_send++, now);
  }
}

static void on_readable(conn_t *c, int64_t now) {
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->len, BUF_CAP - c->len);
    if (n == 0) { conn_fail(c, now); return; }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_fail(c, now);
      return;
    }
    c->len += (size_t)n;
    if (c->state != C_BUSY) { conn_fail(c, now); return; } /* bytes nobody asked for */
    int r = parse_step(c);
    if (r < 0) { conn_fail(c, now); return; }
    if (r == 1) {
      int64_t done = now_ns();
      record(c->sched_ns, done);
      if (done >= warmup_end && done <= sched_end) window_done++;
      if (c->sched_ns >= warmup_end) {
        completed++;
        if (c->status < 200 || c->status > 299) non2xx++;
      }
      c->state = C_IDLE;
      c->pstate = P_HEADERS;
      if (c->close_after) { conn_close(c, now); c->retry_at_ns = now; return; }
      if (c->len > 0) { conn_fail(c, now); return; }
      dispatch(done);
      return;
    }
  }
}

static void on_writable(conn_t *c, int64_t now) {
  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) { conn_close(c, now); errors++; return; }
    c->state = C_IDLE;
    want_write(c, 0);
    dispatch(now);
    return;
  }
  if (c->state == C_BUSY && c->wrote < request_len) {
    flush_request(c, now);
    if (c->state == C_BUSY && c->wrote == request_len) want_write(c, 0);
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile on sorted samples. */
static double pct_us(double p) {
  if (nsamples == 0) return 0;
  size_t rank = (size_t)(p / 100.0 * (double)nsamples + 0.999999999);
  if (rank < 1) rank = 1;
  if (rank > nsamples) rank = nsamples;
  return (double)samples[rank - 1] / 1000.0;
}

static void usage(void) {
  fprintf(stderr, "usage: openloop -h HOST -p PORT -u PATH -r RATE -d SECONDS [-w WARMUP_S] [-c CONNS] [-t DRAIN_S] [-H 'Name: v']...\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *path = "/";
  int port = 0;
  double duration = 10, warmup = 1, drain = 2;
  const char *extra[MAX_EXTRA_HEADERS];
  int nextra = 0;
  nconns = 50;
  rate = 0;
  int opt;
  while ((opt = getopt(argc, argv, "h:p:u:r:d:w:c:t:H:")) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 'u': path = optarg; break;
    case 'r': rate = atof(optarg); break;
    case 'd': duration = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'c': nconns = atoi(optarg); break;
    case 't': drain = atof(optarg); break;
    case 'H': if (nextra < MAX_EXTRA_HEADERS) extra[nextra++] = optarg; break;
    default: usage();
    }
  }
  if (port <= 0 || rate <= 0 || duration <= 0 || nconns <= 0 || warmup < 0) usage();
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &target.sin_addr) != 1) { fprintf(stderr, "openloop: host must be an IPv4 address\n"); return 2; }

  size_t cap = 256 + strlen(path) + strlen(host);
  for (int i = 0; i < nextra; i++) cap += strlen(extra[i]) + 2;
  request_text = malloc(cap);
  int off = snprintf(request_text, cap, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sentinel-bench-openloop\r\n", path, host, port);
  for (int i = 0; i < nextra; i++) off += snprintf(request_text + off, cap - (size_t)off, "%s\r\n", extra[i]);
  off += snprintf(request_text + off, cap - (size_t)off, "\r\n");
  request_len = (size_t)off;

  samples_cap = (size_t)(rate * duration * 1.05) + 1024;
  samples = malloc(samples_cap * sizeof *samples);
  conns = calloc((size_t)nconns, sizeof *conns);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);

  /* Open every connection before the clock starts, so connection setup is not measured. */
  int64_t start = now_ns();
  for (int k = 0; k < nconns; k++) { conns[k].fd = -1; conn_open(&conns[k], start); }
  t0 = start + 200000000LL; /* 200 ms to connect */
  warmup_end = t0 + (int64_t)(warmup * 1e9);
  sched_end = warmup_end + (int64_t)(duration * 1e9);
  int64_t drain_end = sched_end + (int64_t)(drain * 1e9);

  struct epoll_event events[256];
  for (;;) {
    int64_t now = now_ns();
    int64_t due = due_count(now);
    int64_t inflight = 0;
    for (int k = 0; k < nconns; k++) inflight += conns[k].state == C_BUSY;
    if (now >= sched_end && next_to_send >= due && inflight == 0) break;
    if (now >= drain_end) break;
    dispatch(now);
    /* Wake at the next scheduled send (or soon, to revive dead connections). */
    int64_t wake = next_to_send < due ? now + RECONNECT_DELAY_NS : sched_of(due);
    if (wake > drain_end) wake = drain_end;
    if (wake <= now) wake = now + 1000;
    struct itimerspec its = { .it_value = { .tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL } };
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    int n = epoll_wait(epfd, events, 256, -1);
    int64_t t = now_ns();
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
      if (!c) { uint64_t x; ssize_t r = read(tfd, &x, sizeof x); (void)r; continue; }
      if (c->fd < 0) continue;
      if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) { conn_fail(c, t); continue; }
      if (events[i].events & EPOLLOUT) on_writable(c, t);
      if (c->fd >= 0 && events[i].events & EPOLLIN) on_readable(c, t);
    }
  }

  /* Whatever is still queued or in flight is recorded with its age now (a lower bound). */
  int64_t end = now_ns();
  int64_t due = due_count(end);
  for (int k = 0; k < nconns; k++)
    if (conns[k].state == C_BUSY && conns[k].sched_ns >= warmup_end) { record(conns[k].sched_ns, end); unfinished++; }
  for (int64_t i = next_to_send; i < due; i++)
    if (sched_of(i) >= warmup_end) { record(sched_of(i), end); unfinished++; }
  for (int64_t i = 0; i < due; i++) measured_scheduled += sched_of(i) >= warmup_end;

  qsort(samples, nsamples, sizeof *samples, cmp_i64);
  double sum = 0;
  for (size_t i = 0; i < nsamples; i++) sum += (double)samples[i];
  printf("{\"rate\":%.3f,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"connections\":%d,"
         "\"scheduled\":%lld,\"completed\":%lld,\"errors\":%lld,\"non2xx\":%lld,\"unfinished\":%lld,"
         "\"achieved_rps\":%.1f,\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
         "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}}\n",
         rate, duration, warmup, nconns, measured_scheduled, completed, errors, non2xx, unfinished,
         (double)window_done / duration, nsamples ? (double)samples[0] / 1000.0 : 0,
         nsamples ? sum / (double)nsamples / 1000.0 : 0, pct_us(50), pct_us(90), pct_us(99), pct_us(99.9),
         nsamples ? (double)samples[nsamples - 1] / 1000.0 : 0);
  return 0;
}
