package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// mailStates are the outbox states `mail list --state` accepts.
var mailStates = []string{storage.OutboxPending, storage.OutboxSending, storage.OutboxSent, storage.OutboxFailed,
	storage.OutboxSuperseded, storage.OutboxVoid}

// cmdMail is `latchkey mail list`: the outbox — what waits, what failed
// and why — without the messages themselves (they hold codes, and are
// sealed; sent and failed ones are gone).
func cmdMail(env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageErr("mail: expected 'list'")
	}
	fs := newFlags("mail list", env)
	configPath := fs.String("config", "", "configuration file")
	state := fs.String("state", "pending,sending,failed", "states to show, comma-separated ("+strings.Join(mailStates, ", ")+", or all)")
	limit := fs.Int("limit", 100, "at most this many messages, newest first")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var states []string
	if *state != "all" {
		for _, s := range strings.Split(*state, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(mailStates, s) {
				return usageErr("mail list: --state %q is not one of %s, all", s, strings.Join(mailStates, ", "))
			}
			states = append(states, s)
		}
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	msgs, err := a.store.ListOutbox(env.ctx, storage.OutboxFilter{States: states, Limit: *limit})
	if err != nil {
		return err
	}
	tw := newTable(env.stdout)
	fmt.Fprintln(tw, "QUEUED\tSTATE\tKIND\tPURPOSE\tTO\tATTEMPTS\tNEXT ATTEMPT\tGIVES UP\tLAST ERROR")
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, m := range msgs {
		next := "-"
		if m.State == storage.OutboxPending {
			next = at(m.NextAt)
		}
		to := m.Recipient
		if to == "" {
			to = "-"
		}
		errText := strings.ReplaceAll(m.LastError, "\n", " ")
		if len(errText) > 120 {
			errText = errText[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", at(m.CreatedAt), m.State, m.Kind, m.Purpose, to,
			m.Attempts, next, at(m.GiveUpAt), errText)
	}
	return tw.Flush()
}
