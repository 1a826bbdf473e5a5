package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/login/flow"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

const soakUsage = `Usage: latchkey-bench soak --issuer URL --client C --client-secret S [flags]

A rotation soak: mints --families refresh-token families for client C
(which must exist, with the refresh_token grant) in the database of the
configuration (--config, LATCHKEY_*: the running server's), then keeps
every family refreshing through the server's token endpoint, --rate
refreshes a second in all, for --duration. Every --every it prints the
rows of each table and the size of the database; at the end, each
table's rows and the size at the start, the middle and the end. Tables
that stay flat while families rotate are what it is for (README,
"Running on PostgreSQL"). On a PostgreSQL whose autovacuum is off,
--vacuum runs VACUUM before each count, as autovacuum would.

`

func cmdSoak(env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, soakUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "configuration file (the server's)")
	issuer := fs.String("issuer", "", "the running server's issuer URL (required)")
	clientID := fs.String("client", "", "client of the refresh tokens (required; must exist)")
	secret := fs.String("client-secret", "", "its secret (client_secret_basic)")
	families := fs.Int("families", 20, "refresh-token families rotating at once")
	rate := fs.Float64("rate", 50, "refreshes a second, all families together")
	duration := fs.Duration("duration", 10*time.Minute, "how long to soak")
	every := fs.Duration("every", time.Minute, "how often to count rows")
	vacuum := fs.Bool("vacuum", false, "PostgreSQL: VACUUM before each count, as autovacuum (on by default) would; for a server where it is off")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErr("soak: %v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("soak: unexpected argument %q", fs.Arg(0))
	case *issuer == "" || *clientID == "":
		return usageErr("soak: --issuer and --client are required")
	case *families <= 0 || *rate <= 0 || *duration <= 0 || *every <= 0:
		return usageErr("soak: --families, --rate, --duration and --every must be positive")
	}
	store, kr, err := openStore(env, *configPath)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := env.ctx
	if _, err := store.GetClient(ctx, *clientID); errors.Is(err, storage.ErrNotFound) {
		return &cliError{code: exitNotFound, msg: "no client " + *clientID}
	} else if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *families}}
	tokenURL, err := tokenEndpoint(ctx, hc, *issuer)
	if err != nil {
		return err
	}
	raws, err := soakFamilies(ctx, store, kr, *clientID, *families)
	if err != nil {
		return err
	}

	s := &soak{store: store, out: env.stdout, vacuum: *vacuum}
	began := time.Now()
	if err := s.sample(ctx, 0); err != nil {
		return err
	}
	run, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	// One pace for all: a ticker hands out the refreshes.
	pace := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / *rate))
		defer t.Stop()
		for {
			select {
			case <-run.Done():
				close(pace)
				return
			case <-t.C:
				select {
				case pace <- struct{}{}:
				case <-run.Done():
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for _, raw := range raws {
		wg.Go(func() {
			for range pace {
				next, err := refresh(run, hc, tokenURL, *clientID, *secret, raw)
				if err != nil {
					if run.Err() != nil {
						return
					}
					if s.errors.Add(1) <= 5 {
						fmt.Fprintln(env.stderr, "soak: refresh:", err)
					}
					if errors.Is(err, errGrantLost) {
						return // this family is gone; the others go on
					}
					continue
				}
				raw = next
				s.rotations.Add(1)
			}
		})
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-run.Done():
			done = true
			if last := s.samples[len(s.samples)-1].at; time.Since(began)-last < *every/2 {
				continue // the tick just counted: the end is that sample
			}
		case <-tick.C:
		}
		if err := s.sample(ctx, time.Since(began)); err != nil {
			return err
		}
	}
	wg.Wait()
	return s.summary()
}

// soakFamilies creates one user and one refresh-token family (as a
// sign-in with a fresh second factor leaves it) per family, and returns
// the raw tokens.
func soakFamilies(ctx context.Context, store *storage.Store, kr *keyring.Keyring, clientID string, n int) ([]string, error) {
	now := time.Now().UTC()
	tag := strings.ToLower(storage.NewID()[:8])
	raws := make([]string, n)
	for i := range n {
		u, err := store.CreateUser(ctx, storage.User{Email: fmt.Sprintf("soak-%s-%d@example.com", tag, i), Name: "Soak user",
			EmailVerified: true, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return nil, err
		}
		family := storage.NewID()
		raws[i] = op.NewRefreshToken(kr, family)
		if _, err := store.CreateRefreshToken(ctx, storage.RefreshToken{
			FamilyID: family, TokenHash: kr.MACString(keyring.PurposeRefresh, raws[i]), ClientID: clientID, UserID: u.ID,
			Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid", "offline_access"},
			Audience: []string{clientID}, AMR: []string{"pwd", "otp", "mfa"}, ACR: flow.ACRMFA,
			AuthTime: now, SecondFactorAt: now, CreatedAt: now,
		}); err != nil {
			return nil, err
		}
	}
	return raws, nil
}

// tokenEndpoint reads the token endpoint from the issuer's discovery.
func tokenEndpoint(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return "", usageErr("soak: --issuer: %v", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	var d struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK || d.TokenEndpoint == "" {
		return "", fmt.Errorf("discovery: %s: no token endpoint (%v)", resp.Status, err)
	}
	return d.TokenEndpoint, nil
}

var errGrantLost = errors.New("invalid_grant: the family is gone")

// refresh spends raw and returns its successor.
func refresh(ctx context.Context, hc *http.Client, tokenURL, clientID, secret, raw string) (string, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	var t struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(body, &t)
	switch {
	case resp.StatusCode == http.StatusOK && t.RefreshToken != "":
		return t.RefreshToken, nil
	case t.Error == "invalid_grant":
		return "", errGrantLost
	}
	return "", fmt.Errorf("%s: %.200s", resp.Status, body)
}

// soak keeps the samples of one run.
type soak struct {
	store     *storage.Store
	out       io.Writer
	vacuum    bool
	rotations atomic.Int64
	errors    atomic.Int64
	samples   []soakSample
}

type soakSample struct {
	at        time.Duration
	rotations int64
	size      int64
	rows      map[string]int64
}

// soakShown: the tables a sample line shows (all of them are in the
// summary).
var soakShown = []string{"refresh_tokens", "access_tokens", "audit_events", "sessions", "auth_requests", "throttles", "mail_outbox"}

func (s *soak) sample(ctx context.Context, at time.Duration) error {
	if s.vacuum {
		if err := s.store.Vacuum(ctx); err != nil {
			return err
		}
	}
	rows, err := s.store.TableRows(ctx)
	if err != nil {
		return err
	}
	size, err := s.store.DatabaseSize(ctx)
	if err != nil {
		return err
	}
	x := soakSample{at: at.Round(time.Second), rotations: s.rotations.Load(), size: size, rows: rows}
	s.samples = append(s.samples, x)
	var b strings.Builder
	fmt.Fprintf(&b, "%8s  rotations %7d  errors %d  size %s", x.at, x.rotations, s.errors.Load(), mib(size))
	for _, t := range soakShown {
		fmt.Fprintf(&b, "  %s %d", t, rows[t])
	}
	fmt.Fprintln(s.out, b.String())
	return nil
}

// summary prints every table that had rows, and the size, at the start,
// the sample nearest the middle, and the end.
func (s *soak) summary() error {
	if len(s.samples) < 2 {
		return nil
	}
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	mid := s.samples[0]
	for _, x := range s.samples {
		if (x.at - last.at/2).Abs() < (mid.at - last.at/2).Abs() {
			mid = x
		}
	}
	fmt.Fprintf(s.out, "\n%d rotations in %s (%.0f/s), %d errors\n\n", last.rotations, last.at,
		float64(last.rotations)/last.at.Seconds(), s.errors.Load())
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "table\tstart (%s)\tmiddle (%s)\tend (%s)\t\n", first.at, mid.at, last.at)
	names := map[string]bool{}
	for _, x := range s.samples {
		for t, n := range x.rows {
			if n > 0 {
				names[t] = true
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(names)) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", t, first.rows[t], mid.rows[t], last.rows[t])
	}
	fmt.Fprintf(tw, "database size\t%s\t%s\t%s\t\n", mib(first.size), mib(mid.size), mib(last.size))
	return tw.Flush()
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
