package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

// pageCopies counts the per-language copies of pages the kit holds.
func pageCopies(k *Kit) int {
	n := 0
	k.pages.Range(func(any, any) bool { n++; return true })
	return n
}

// TestPagesCopiedPerLanguageOnUse: a page is copied for a language the
// first time it is shown in it, and that copy speaks the language; a
// language nobody asks for costs nothing, and an Accept-Language the
// server does not offer adds no copy.
func TestPagesCopiedPerLanguageOnUse(t *testing.T) {
	k := testKit(t, "http://localhost:8080")
	if n := pageCopies(k); n != 0 {
		t.Fatalf("%d page copies before any page was shown, want 0", n)
	}
	show := func(accept string) (lang, body string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept-Language", accept)
		rec := httptest.NewRecorder()
		if err := k.Render(echo.New().NewContext(req, rec), http.StatusBadRequest, "error",
			Page{Title: MsgErrorTitle, Data: ErrorData{ErrorID: "e1d"}}); err != nil {
			t.Fatal(err)
		}
		return rec.Header().Get("Content-Language"), rec.Body.String()
	}
	for _, c := range []struct {
		accept, lang, text string
		copies             int
	}{
		{"de-DE", "de", "Fehler-ID: <code>e1d</code>", 1},
		{"de", "de", "Fehler-ID", 1},
		{"fr-CA, de;q=0.5", "fr", "Identifiant de l'erreur", 2},
		{"x-evil-" + strings.Repeat("a", 20) + ", tlh", "en", "Error id: <code>e1d</code>", 3},
		{"zz, qq, tlh-Latn", "en", "Error id", 3},
	} {
		lang, body := show(c.accept)
		if lang != c.lang || !strings.Contains(body, c.text) {
			t.Errorf("Accept-Language %q: page in %q, want %q with %q:\n%s", c.accept, lang, c.lang, c.text, body)
		}
		if n := pageCopies(k); n != c.copies {
			t.Errorf("after Accept-Language %q: %d page copies, want %d", c.accept, n, c.copies)
		}
	}
	if err := k.Render(echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder()),
		http.StatusOK, "no-such-page", Page{}); err == nil {
		t.Error("an unknown page rendered")
	}
}

// TestPagesCopiedOnceUnderConcurrentUse: many requests showing a page in a
// new language at once make one copy, and every one of them gets the page
// (run with -race).
func TestPagesCopiedOnceUnderConcurrentUse(t *testing.T) {
	k := testKit(t, "http://localhost:8080")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept-Language", []string{"ja", "es"}[i%2])
			rec := httptest.NewRecorder()
			if err := k.Render(echo.New().NewContext(req, rec), http.StatusOK, "error", Page{Title: MsgErrorTitle, Data: ErrorData{}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := pageCopies(k); n != 2 {
		t.Errorf("%d page copies after 40 concurrent requests in two languages, want 2", n)
	}
}
