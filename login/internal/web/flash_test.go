package web

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
)

// TestFlashOnlyForItsPage: what a failed POST hands to the GET of its page
// reaches that page once, and only that page: a forged or altered cookie,
// a flash made for another address, and a POST carrying it show nothing.
func TestFlashOnlyForItsPage(t *testing.T) {
	k := testKit(t, "https://id.example.com")
	errMsg := i18n.M("throttle.too_many", "Wait", 3*time.Second)
	post := func(target string) []*http.Cookie {
		return call(t, nil, url.Values{"password": {"x"}}, func(c echo.Context) {
			if err := k.SeeOther(c, target, http.StatusUnauthorized, errMsg, i18n.Msg{}, func() error {
				t.Fatal("the flash could not be set")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
	take := func(cookies []*http.Cookie, form url.Values) (status int, got i18n.Msg, ok bool, set []*http.Cookie) {
		set = call(t, cookies, form, func(c echo.Context) { status, got, _, ok = k.TakeFlash(c) })
		return
	}

	held := jar(nil, post("/"))
	status, got, ok, set := take(held, nil)
	if !ok || status != http.StatusUnauthorized || got.ID != errMsg.ID || len(got.Args) != 2 || got.Args[1] != 3*time.Second {
		t.Fatalf("the page's own flash: ok %v, status %d, %+v", ok, status, got)
	}
	if after := jar(held, set); len(after) != 0 {
		t.Fatalf("the flash is not used up: %v", after)
	}

	if _, _, ok, _ := take(jar(nil, post("/other?id=1")), nil); ok {
		t.Fatal("a flash made for another page was shown")
	}
	if _, _, ok, _ := take(held, url.Values{"a": {"b"}}); ok {
		t.Fatal("a POST took the flash")
	}
	raw, err := DecodeSealed(held[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1 // a sealed byte changed (not the encoding's spare bits)
	for _, v := range []string{"garbage", EncodeSealed(raw)} {
		forged := []*http.Cookie{{Name: held[0].Name, Value: v}}
		if _, _, ok, _ := take(forged, nil); ok {
			t.Fatalf("a forged flash %q was shown", v)
		}
	}
}
