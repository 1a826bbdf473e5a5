package storage

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/schema"
)

// TestHandWrittenInserts keeps the hand-written INSERTs and SELECTs of the
// token endpoint in step with their row structs (the gorm models).
func TestHandWrittenInserts(t *testing.T) {
	for _, tc := range []struct {
		model  any
		stmt   string
		values []any // or scan targets
	}{
		{&refreshTokenRow{}, refreshTokenInsert, (&refreshTokenRow{}).values()},
		{&accessTokenRow{}, accessTokenInsert, (&accessTokenRow{}).values()},
		{&userRow{}, userInsert, (&userRow{}).values()},
		{&refreshTokenRow{}, refreshTokenInsert, (&refreshTokenRow{}).ptrs()},
		{&userRow{}, userInsert, (&userRow{}).ptrs()},
		{&refreshTokenRow{}, refreshTokenOld, (&refreshTokenRow{}).ptrs()},
		{&refreshTokenRow{}, refreshTokenByFamily, (&refreshTokenRow{}).ptrs()},
		{&refreshTokenRow{}, refreshTokenByDigest, (&refreshTokenRow{}).ptrs()},
		{&userRow{}, userByID, (&userRow{}).ptrs()},
		{&accessTokenRow{}, accessTokenByID, (&accessTokenRow{}).ptrs()},
		{&sessionRow{}, sessionByTokenHash, (&sessionRow{}).ptrs()},
		{&authRequestRow{}, authRequestByID, (&authRequestRow{}).ptrs()},
		{&userRow{}, userByEmailKey, (&userRow{}).ptrs()},
		{&clientRow{}, clientByID, (&clientRow{}).ptrs()},
		{&emailCodeRow{}, latestEmailCode, (&emailCodeRow{}).ptrs()},
		{&totpRow{}, totpByUser, (&totpRow{}).ptrs()},
		{&organizationRow{}, organizationByDomain, (&organizationRow{}).ptrs()},
	} {
		sch, err := schema.Parse(tc.model, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		// The column list of "INSERT INTO t (…) VALUES" or "SELECT … FROM".
		m := regexp.MustCompile(`(?s)^(?:INSERT INTO \w+ \((.*?)\)\s*VALUES|SELECT (.*?) FROM )`).FindStringSubmatch(tc.stmt)
		if m == nil {
			t.Fatalf("no column list in %q", tc.stmt)
		}
		cols := splitColumns(m[1] + m[2])
		if strings.Join(cols, ",") != strings.Join(sch.DBNames, ",") {
			t.Fatalf("statement columns\n %v\ndiffer from the model\n %v", cols, sch.DBNames)
		}
		if n := strings.Count(tc.stmt, "?"); (m[1] != "" && n != len(cols)) || len(tc.values) != len(cols) {
			t.Fatalf("%s: %d placeholders, %d values, %d columns", sch.Table, n, len(tc.values), len(cols))
		}
	}
}

// TestHandWrittenUpdate: the sign-in's UPDATE of an auth request sets
// every column of the model but id, in order, and takes updateValues().
func TestHandWrittenUpdate(t *testing.T) {
	sch, err := schema.Parse(&authRequestRow{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)^UPDATE auth_requests SET (.*?)\s+WHERE id = \?$`).FindStringSubmatch(authRequestUpdate)
	if m == nil {
		t.Fatalf("unexpected statement %q", authRequestUpdate)
	}
	var cols []string
	for _, set := range splitColumns(m[1]) {
		c, ok := strings.CutSuffix(set, " = ?")
		if !ok {
			t.Fatalf("not a placeholder assignment: %q", set)
		}
		cols = append(cols, c)
	}
	if want := sch.DBNames[1:]; sch.DBNames[0] != "id" || !slices.Equal(cols, want) {
		t.Fatalf("SET columns\n %v\ndiffer from the model\n %v", cols, want)
	}
	if n := len((&authRequestRow{}).updateValues()); n != len(cols)+1 || strings.Count(authRequestUpdate, "?") != n {
		t.Fatalf("%d values for %d columns and id", n, len(cols))
	}
}

func TestRebindDollar(t *testing.T) {
	if got := rebindDollar("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatal(got)
	}
}

// fill sets every field of the struct *p to a distinct non-zero value, so
// that a conversion that forgets a field shows up as a difference.
func fill(t *testing.T, p any) {
	t.Helper()
	v := reflect.ValueOf(p).Elem()
	base := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, i))
		case bool:
			f.SetBool(true)
		case int, int64:
			f.SetInt(int64(i + 1))
		case uint32:
			f.SetUint(uint64(i+1) << 24) // beyond int32: the column is BIGINT
		case time.Time:
			f.Set(reflect.ValueOf(base.Add(time.Duration(i) * time.Minute)))
		case time.Duration:
			f.Set(reflect.ValueOf(time.Duration(i+1) * time.Second))
		case []string:
			f.Set(reflect.ValueOf([]string{fmt.Sprint("a", i), "b"}))
		case []byte:
			f.Set(reflect.ValueOf([]byte{byte(i + 1), 0, 0xff}))
		case *int64:
			n := int64(i + 7)
			f.Set(reflect.ValueOf(&n))
		case map[string]string:
			f.Set(reflect.ValueOf(map[string]string{"k": fmt.Sprint(i)}))
		default:
			t.Fatalf("fill: %s.%s has unhandled type %s", v.Type().Name(), v.Type().Field(i).Name, f.Type())
		}
	}
}

// roundTrip checks that every field of T survives enc and dec.
func roundTrip[T any, R any](t *testing.T, enc func(T) R, dec func(R) (T, error), clear func(*T)) {
	t.Helper()
	var want T
	fill(t, &want)
	if clear != nil {
		clear(&want)
	}
	got, err := dec(enc(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T does not round-trip:\n got %+v\nwant %+v", want, got, want)
	}
}

// TestRowsCoverEveryField catches a field added to types.go but not to its
// row conversion.
func TestRowsCoverEveryField(t *testing.T) {
	roundTrip(t, userToRow, noErr(userRow.domain), nil)
	roundTrip(t, clientToRow, clientRow.domain, nil)
	roundTrip(t, authRequestToRow, authRequestRow.domain, nil)
	roundTrip(t, sessionToRow, sessionRow.domain, nil)
	roundTrip(t, trustedDeviceToRow, noErr(trustedDeviceRow.domain), nil)
	roundTrip(t, emailCodeToRow, noErr(emailCodeRow.domain), nil)
	roundTrip(t, totpToRow, noErr(totpRow.domain), nil)
	roundTrip(t, backupCodeToRow, noErr(backupCodeRow.domain), nil)
	roundTrip(t, refreshTokenToRow, refreshTokenRow.domain, nil)
	roundTrip(t, accessTokenToRow, accessTokenRow.domain, nil)
	roundTrip(t, signingKeyToRow, noErr(signingKeyRow.domain), nil)
	roundTrip(t, deviceAuthorizationToRow, deviceAuthorizationRow.domain, nil)
	roundTrip(t, auditEventToRow, auditEventRow.domain, nil)
	roundTrip(t, throttleToRow, noErr(throttleRow.domain), nil)
	roundTrip(t, actionTokenToRow, noErr(actionTokenRow.domain), nil)
	roundTrip(t, logoutRequestToRow, noErr(logoutRequestRow.domain), nil)
	// Domains live in organization_domains, not in the row.
	roundTrip(t, organizationToRow, organizationRow.domain, func(o *Organization) { o.Domains = nil })
	roundTrip(t, federatedIdentityToRow, noErr(federatedIdentityRow.domain), nil)
	roundTrip(t, upstreamStateToRow, noErr(upstreamStateRow.domain), nil)
	roundTrip(t, passkeyToRow, passkeyRow.domain, nil)
	roundTrip(t, passkeyChallengeToRow, noErr(passkeyChallengeRow.domain), nil)
	roundTrip(t, pushedRequestToRow, pushedRequestRow.domain, nil)
	roundTrip(t, backchannelLogoutToRow, noErr(backchannelLogoutRow.domain), nil)
	roundTrip(t, consentToRow, consentRow.domain, nil)
	roundTrip(t, knownBrowserToRow, noErr(knownBrowserRow.domain), nil)
	roundTrip(t, outboxToRow, noErr(outboxRow.domain), nil)
}

// migratedSQLite is a store on a new, migrated SQLite file, closed when
// the test ends.
func migratedSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "x.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRowsMatchSchema: every row struct's columns are exactly the columns
// the migrations create.
func TestRowsMatchSchema(t *testing.T) {
	s := migratedSQLite(t)
	models := []any{
		&userRow{}, &clientRow{}, &authRequestRow{}, &sessionRow{}, &trustedDeviceRow{},
		&emailCodeRow{}, &totpRow{}, &backupCodeRow{}, &refreshTokenRow{}, &accessTokenRow{},
		&signingKeyRow{}, &deviceAuthorizationRow{}, &auditEventRow{}, &throttleRow{},
		&actionTokenRow{}, &logoutRequestRow{}, &organizationRow{}, &organizationDomainRow{},
		&federatedIdentityRow{}, &upstreamStateRow{}, &passkeyRow{}, &passkeyChallengeRow{}, &eventDeliveryRow{},
		&usedJTIRow{}, &pushedRequestRow{}, &sessionClientRow{}, &backchannelLogoutRow{}, &consentRow{},
		&knownBrowserRow{}, &outboxRow{}, &refreshFamilyRow{},
	}
	var tables []string
	if err := s.read(t.Context()).Raw(
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?", migrationTable).
		Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) != len(models) {
		t.Errorf("%d tables %v, %d models", len(tables), tables, len(models))
	}
	for _, m := range models {
		sch, err := schema.Parse(m, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		if err := s.read(t.Context()).Raw("SELECT name FROM pragma_table_info(?)", sch.Table).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(sch.DBNames), dbOnlyColumns[sch.Table]...)
		slices.Sort(want)
		slices.Sort(cols)
		if !slices.Equal(cols, want) {
			t.Errorf("table %s has columns\n %v\nmodel wants\n %v", sch.Table, cols, want)
		}
	}
}

// dbOnlyColumns are columns no model reads or writes: set by a migration
// and read only by the statements that name them.
var dbOnlyColumns = map[string][]string{
	// Marks the tokens from before migration 0012 (refreshTokenOld);
	// every token written since has the default, false.
	"refresh_tokens": {"hash_only"},
}

// TestPlainLists: the reflection-free list codec writes exactly what
// json.Marshal writes, reads back what it wrote, and leaves everything
// else (escapes, non-ASCII, HTML characters, malformed text) to
// encoding/json.
func TestPlainLists(t *testing.T) {
	for _, l := range [][]string{
		{"openid"}, {"openid", "email", "profile", "offline_access"}, {""}, {"a,b", "c d", "]", "["},
		{"https://api.example.com/x?y=1"}, {"quote\"d"}, {`back\slash`}, {"<html>"}, {"a&b"},
		{"é"}, {"tab\t"}, {"\x7f"}, {"\u2028"},
	} {
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if got := encList(l); got != string(want) {
			t.Errorf("encList(%q) = %s, want %s", l, got, want)
		}
		var d decoder
		if got := d.list(string(want)); !slices.Equal(got, l) || d.err != nil {
			t.Errorf("list(%s) = %q, %v; want %q", want, got, d.err, l)
		}
	}
	for _, s := range []string{`["a" ]`, `[ "a"]`, `["a",]`, `["a"]x`, `["a"`, `[a]`, `["\u0061"]`, `["a","b"`, `["a"],`} {
		if l, ok := decPlainList(s); ok {
			t.Errorf("decPlainList(%s) = %q, want a fallback", s, l)
		}
		var want []string
		wantErr := json.Unmarshal([]byte(s), &want) != nil
		var d decoder
		got := d.list(s)
		if (d.err != nil) != wantErr || (!wantErr && !slices.Equal(got, want)) {
			t.Errorf("list(%s) = %q, %v; json says %q (error %v)", s, got, d.err, want, wantErr)
		}
	}
}

// TestRefreshLookupPlans: SQLite finds a presented refresh token through
// an index, never by scanning refresh_tokens: by family in the family
// index, by digest alone in the partial index of the tokens from before
// migration 0012. (PostgreSQL finds both by its unique index of digests.)
func TestRefreshLookupPlans(t *testing.T) {
	s := migratedSQLite(t)
	for q, want := range map[string]string{
		refreshTokenByFamily: "SEARCH refresh_tokens USING INDEX refresh_tokens_family_token (family_id=?)",
		refreshGrantByFamily: "SEARCH r USING INDEX refresh_tokens_family_token (family_id=?)",
		refreshTokenOld:      "SEARCH refresh_tokens USING INDEX refresh_tokens_hash_only (token_hash=?)",
		refreshGrantOld:      "SEARCH r USING INDEX refresh_tokens_hash_only (token_hash=?)",
	} {
		args := []any{[]byte("digest")}
		if strings.Count(q, "?") == 2 {
			args = []any{"family", []byte("digest")}
		}
		plan := queryPlan(t, s, q, args...)
		if len(plan) == 0 || plan[0] != want || slices.ContainsFunc(plan, func(d string) bool {
			return strings.HasPrefix(d, "SCAN") || strings.Contains(d, "TEMP B-TREE")
		}) {
			t.Errorf("%s\nplan %q, want it to start with %q, with no scan or sort", q, plan, want)
		}
	}
}

// TestFamilySearchPlans: the searches of refresh tokens by user or
// session find the families by refresh_families' indexes and their
// tokens by the family index; refresh_tokens is never scanned (it has no
// user or session index since migration 0013).
func TestFamilySearchPlans(t *testing.T) {
	s := migratedSQLite(t)
	for _, c := range []struct {
		q    string
		args []any
		want []string
	}{
		{"SELECT * FROM refresh_tokens WHERE " + userHeads, []any{"u"},
			[]string{"refresh_families_user", "refresh_tokens_family_token"}},
		{revokeFamiliesIn + "(" + refreshFamiliesWhere + "session_id = ? AND client_id = ?)", []any{1, "s", "c"},
			[]string{"refresh_families_session", "refresh_tokens_family_token"}},
		{revokeFamiliesIn + "(" + refreshFamiliesWhere + "user_id = ?)", []any{1, "u"},
			[]string{"refresh_families_user", "refresh_tokens_family_token"}},
	} {
		plan := queryPlan(t, s, c.q, c.args...)
		joined := strings.Join(plan, "\n")
		for _, idx := range c.want {
			if !strings.Contains(joined, "INDEX "+idx+" ") {
				t.Errorf("%s\nplan %q does not use %s", c.q, plan, idx)
			}
		}
		if slices.ContainsFunc(plan, func(d string) bool { return strings.HasPrefix(d, "SCAN") }) {
			t.Errorf("%s\nplan %q scans", c.q, plan)
		}
	}
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of q, a line per step.
func queryPlan(t *testing.T, s *Store, q string, args ...any) []string {
	t.Helper()
	rows, err := s.hot.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}
