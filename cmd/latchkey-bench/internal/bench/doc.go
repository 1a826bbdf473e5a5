// Package bench is "latchkey-bench bench": a closed-loop load generator
// for any OpenID provider, so that Latchkey and its peers are measured by
// the same tool, the same way, in the same session. It imports nothing of
// Latchkey but the SMTP sink (it measures every provider from the outside)
// and is internal to cmd/latchkey-bench, so the IdP binary cannot link it.
//
// # What it measures
//
// The provider is found through its discovery document
// (ISSUER/.well-known/openid-configuration); every endpoint comes from
// there. A scenario is one kind of request:
//
//   - discovery, jwks: GET the discovery document / jwks_uri.
//   - client-credentials: POST token_endpoint grant_type=client_credentials
//     (&scope=--scope) with client_secret_basic (or --auth-method
//     client_secret_post).
//   - refresh: POST grant_type=refresh_token. Each worker follows its own
//     chain: it replaces its token with the one each response carries (a
//     provider that does not rotate returns none, and the worker keeps its
//     token). A 4xx breaks the chain: the worker records the error and
//     stops ("chains broken: N"). Give --refresh-token-file one token per
//     worker (at least --concurrency lines) for a rotating provider; one
//     line shared by all workers works only for a provider that does not
//     rotate (the bench warns).
//   - userinfo: GET userinfo_endpoint with a Bearer access token obtained
//     before the run by redeeming each refresh token of the file once.
//   - introspect: the client obtains one access token per worker with
//     client_credentials before the run, then introspects its own token
//     (POST introspection_endpoint, token=…, client authentication).
//   - signin (Latchkey only): one iteration is one whole browserless
//     sign-in: a fresh cookie jar, GET authorize (code, PKCE S256, state,
//     nonce, scope "openid email"), the identifier, password, email-code,
//     remember ("no") and backup-code ("saved") pages — each form parsed
//     with an HTML tokenizer and posted back with its hidden fields — then
//     the redirect to --redirect-uri (never followed: the bench stops at
//     the first redirect off the issuer's host, checks state), and the
//     code exchange at the token endpoint with the PKCE verifier, which
//     must return an ID token with the nonce. The email code is read from
//     an SMTP sink the bench starts itself (--smtp-listen, default
//     127.0.0.1:2525; package login/mail/mailsink, which accepts any
//     sender, recipient and credentials and so belongs in this binary
//     only). The result is in sign-ins per second.
//
// Closed loop: --concurrency workers each send their next request as soon
// as the previous one returns, on keep-alive connections (one per worker:
// MaxIdleConnsPerHost = concurrency, no transparent gzip, no proxy from the
// environment, redirects not followed except inside signin). The first
// --warmup (default 2s) is not counted; then, for --duration (default
// 10s), every request that completes inside the window is counted:
// successes (2xx) with their latency, failures by kind ("status 400",
// "transport error", for signin "status 400 at /login/password", "mail
// timeout", …). Latency percentiles (p50, p90, p99, max; nearest rank) are
// over every successful request of the window: each worker keeps all its
// samples, merged and sorted at the end. req/s = successes / duration. A
// closed loop slows down with the server, so under overload its latencies
// understate what an open-loop (fixed arrival rate) client would see;
// compare throughput and CPU per request first.
//
// Server cost (--pid, Linux): the server process's CPU time, utime+stime
// from /proc/PID/stat (fields 14 and 15, all threads, in clock ticks:
// CLK_TCK is asked of getconf once and assumed to be 100 if that fails),
// is read at the start and at the end of the measured window; divided by
// the successes of the window it gives server CPU ms per request, and
// 1000 / that is requests per second per server core — the fairest
// per-core figure, valid even when the load generator, not the server, is
// the bottleneck. The resolution is one tick (10 ms) over the window.
// VmRSS (/proc/PID/status) is read at both ends of the window and every
// 100 ms during the run (the peak); VmHWM, the kernel's peak RSS since
// the process started, is reported too. Warmup is excluded from the CPU
// figures (the anchors in ../shared/notes/perf-anchors.md included it;
// the difference is small after a 2 s warmup).
//
// Database cost (--db-match TEXT, Linux): the same utime+stime, summed
// over every process whose command line contains TEXT — for PostgreSQL
// the database name, which its backends carry in their process titles
// ("postgres: 15/main: postgres lk_bench 127.0.0.1(…) idle") — at both
// ends of the window, gives the database's CPU ms per request (db_procs,
// db_cpu_ms, db_cpu_ms_per_req). A backend that exits inside the window
// is not counted; the shared background processes (WAL writer,
// checkpointer) are not either, unless TEXT matches them.
//
// Password hashing (--metrics-url URL, a Latchkey server): its
// latchkey_password_hash_cpu_seconds histogram, scraped at both ends of
// the window, gives the argon2id runs inside it and their CPU as the
// server measured it on each run's thread (password_hashes,
// password_hash_cpu_ms, password_hash_cpu_ms_each), and with --pid the
// server's CPU per request besides them (cpu_ms_per_req_besides_hashes):
// for signin, the hash against the rest of a sign-in.
//
// Output is a text block, or with --json one object with snake_case keys
// (latencies in ms, durations in s): scenario, issuer, requests, errors,
// errors_by_status, rps, p50_ms, p90_ms, p99_ms, max_ms, server_cpu_ms,
// cpu_ms_per_req, rps_per_core, rss_before_kib, rss_after_kib,
// rss_peak_kib, rss_hwm_kib, concurrency, duration_s, warmup_s,
// chains_broken, warnings.
//
// # Reproducing the figures
//
// This machine has two cores. Pin the server to one (taskset -c 1) and
// the bench to the other (taskset -c 0), so that "per core" means one
// server core, and run the same scenarios against both providers in the
// same session (the VM's noise between sessions is ±15–20 %). Start each
// server fresh: node-oidc-provider's refresh grows more expensive the
// more refreshes its one pre-minted grant has served (about 1.0k/s on a
// fresh process, 0.6k/s and 0.4k/s on the next two 12 s runs).
//
// The peer (panva's oidc-provider, ../shared/peers/nodeop):
//
//	cd ../shared/peers/nodeop && npm ci
//	PORT=3000 SIGN_ALG=ES256 AT_FORMAT=jwt RT_FILE=/tmp/rt.txt taskset -c 1 node server.js &
//	PEER=$!
//	B="taskset -c 0 latchkey-bench bench --issuer http://127.0.0.1:3000 --client-id bench \
//	   --client-secret benchsecret-benchsecret-benchsecret --concurrency 50 --pid $PEER"
//	$B --scenario discovery
//	$B --scenario jwks
//	$B --scenario client-credentials --scope api
//	$B --scenario refresh --refresh-token-file /tmp/rt.txt   # the peer does not rotate: one token for all
//	kill $PEER
//
// Latchkey, the same way (for example ES256 keys, SQLite in a scratch
// data directory, mail to the bench's SMTP sink):
//
//	export LATCHKEY_ISSUER=http://127.0.0.1:8080 LATCHKEY_DATA_DIR=/tmp/lkbench \
//	       LATCHKEY_KEYS_ALGORITHM=ES256 LATCHKEY_SMTP_URL=smtp://127.0.0.1:2525
//	latchkey migrate
//	echo -n benchsecret-benchsecret-benchsecret | latchkey client create --id bench --secret-stdin \
//	    --grant client_credentials,refresh_token,authorization_code --redirect-uri http://127.0.0.1:9/cb
//	taskset -c 1 latchkey serve & LK=$!
//	B="taskset -c 0 latchkey-bench bench --issuer http://127.0.0.1:8080 --client-id bench \
//	   --client-secret benchsecret-benchsecret-benchsecret --concurrency 50 --pid $LK"
//	$B --scenario discovery; $B --scenario jwks; $B --scenario client-credentials --scope api
//
// Latchkey rotates refresh tokens, so its refresh scenario needs one token
// per worker in --refresh-token-file (each from a sign-in with
// offline_access, or minted by "latchkey-bench seed --refresh-tokens N
// --tokens-out FILE").
//
// Without the latchkey-bench binary, the package's manual test runs the
// same code (it is skipped unless LATCHKEY_BENCH_PEER is set):
//
//	go test -c -o /tmp/bench.test ./cmd/latchkey-bench/internal/bench
//	LATCHKEY_BENCH_PEER=http://127.0.0.1:3000 LATCHKEY_BENCH_PID=$PEER \
//	    taskset -c 0 /tmp/bench.test -test.run TestManualPeer -test.v
//	LATCHKEY_BENCH_PEER=1 taskset -c 0 /tmp/bench.test -test.run TestManualPeer -test.v -- --issuer … --scenario …
//
// # The signin scenario
//
// It needs: the server's smtp_url pointing at the bench's sink
// (LATCHKEY_SMTP_URL=smtp://127.0.0.1:2525, the default --smtp-listen); a
// client whose redirect URIs include --redirect-uri (it is never fetched)
// and that may use authorization_code; and users with passwords, at least
// one per worker. --users names them: a file of "email:password" lines,
// or a pattern with %d and --users-count N
// ("bench%d@example.com:Bench-password-123" gives bench0 … bench{N-1}).
// Worker w signs in users w, w+c, w+2c, … (c = --concurrency), so no two
// workers ever share a user. Latchkey mails at most 5 codes per account
// per 15 minutes; beyond that sign-ins fail with "mail timeout". So seed
//
//	--users-count ≥ (expected sign-ins per second × seconds of all runs within 15 minutes) / 5
//
// for example 45/s × 12 s / 5 ≈ 110 users per run, and 15 minutes apart or
// fresh users for each run. The first sign-in of a new user also shows
// the backup-code page, which the bench acknowledges; later ones do not.
//
// Every sign-in comes from a new browser (a fresh cookie jar) unless
// --keep-browser is given: then each user keeps its cookies from one
// sign-in to the next, as a returning user does, and asks with
// prompt=login (the browser still holds the user's session, which would
// otherwise answer without a password) — Latchkey knows the browser, so
// it sends no "new sign-in" mail. To measure only returning
// sign-ins, let the warm-up sign every user in once: with c workers and
// N users, a warm-up of about N / (sign-ins per second) seconds, and few
// enough users that no account needs more than 5 codes in the run
// (for example 150 users, --warmup 8s, at 25–30 sign-ins/s).
//
// Seed them with "latchkey-bench seed", which hashes the password once
// and bulk-inserts the users into the server's database (same
// configuration as serve):
//
//	latchkey-bench seed --users 200    # bench0@example.com … bench199@example.com, Bench-password-123
//
// # Flags
//
//	--issuer URL               the provider (required)
//	--scenario S               discovery | jwks | client-credentials | refresh | userinfo | introspect | signin
//	--client-id, --client-secret
//	--auth-method M            client_secret_basic (default) | client_secret_post | none
//	--concurrency N            workers (default 50)
//	--duration D, --warmup D   measured window (10s) and unmeasured warmup (2s; 0: none)
//	--rate N                   requests per second in total, paced (open loop); 0: closed loop
//	--pid PID                  the server process, for CPU and RSS
//	--db-match TEXT            the database processes (command line contains TEXT), for their CPU
//	--metrics-url URL          a Latchkey server's /metrics: its argon2id runs and their CPU
//	--json                     machine-readable output
//	--scope S                  client-credentials and introspect
//	--refresh-token-file F     refresh and userinfo: tokens, one a line
//	--users U, --users-count N signin users
//	--keep-browser             signin: each user keeps its browser (cookies) across its sign-ins
//	--smtp-listen ADDR         signin: the SMTP sink (default 127.0.0.1:2525)
//	--redirect-uri URI         signin: a redirect URI registered for the client
package bench
