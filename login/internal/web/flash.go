package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
)

// Redirect after POST: a form whose POST fails (a wrong password, a wrong
// code) or only asks for something (a new code) does not answer with a
// page, which would leave the POST in the address bar for a reload to
// resubmit. It redirects (303) to the GET of its page and hands that page
// what it would have shown — its error, its notice, its status — in a
// sealed cookie that lives a minute (its Max-Age), is good for that one
// address, and is used up by the first GET of it. A reload shows the page plain.

// flashFor: the redirect is followed at once.
const flashFor = time.Minute

// flash is the content of the lk_flash cookie.
type flash struct {
	URI    string   `json:"u"` // the page's path and query
	Status int      `json:"s"`
	Error  flashMsg `json:"e"`
	Notice flashMsg `json:"n"`
}

// flashMsg is an i18n.Msg whose arguments are strings, numbers or
// durations (what the messages of a failed form take).
type flashMsg struct {
	ID    string     `json:"i,omitempty"`
	Args  []flashArg `json:"a,omitempty"`
	Count int        `json:"c,omitempty"`
	Plur  bool       `json:"p,omitempty"`
}

type flashArg struct {
	S *string        `json:"s,omitempty"`
	N *int64         `json:"n,omitempty"`
	D *time.Duration `json:"d,omitempty"`
}

var errFlashArg = errors.New("web: a flashed message's argument must be a string, an int or a duration")

func toFlash(m i18n.Msg) (flashMsg, error) {
	f := flashMsg{ID: m.ID, Count: m.Count, Plur: m.Plural}
	for _, a := range m.Args {
		var x flashArg
		switch v := a.(type) {
		case string:
			x.S = &v
		case int:
			n := int64(v)
			x.N = &n
		case int64:
			x.N = &v
		case time.Duration:
			x.D = &v
		default:
			return flashMsg{}, errFlashArg
		}
		f.Args = append(f.Args, x)
	}
	return f, nil
}

func (f flashMsg) msg() i18n.Msg {
	m := i18n.Msg{ID: f.ID, Count: f.Count, Plural: f.Plur}
	for _, a := range f.Args {
		switch {
		case a.S != nil:
			m.Args = append(m.Args, *a.S)
		case a.N != nil:
			m.Args = append(m.Args, *a.N)
		case a.D != nil:
			m.Args = append(m.Args, *a.D)
		default:
			m.Args = append(m.Args, "")
		}
	}
	return m
}

// SeeOther ends a POST: the browser goes to target (a path and query of
// ours, the GET of the form's page), which shows errMsg and notice with
// status (TakeFlash). render is the fallback when they cannot travel:
// the page is rendered in the POST's answer as before.
func (k *Kit) SeeOther(c echo.Context, target string, status int, errMsg, notice i18n.Msg, render func() error) error {
	f := flash{URI: target, Status: status}
	var err error
	if f.Error, err = toFlash(errMsg); err == nil {
		f.Notice, err = toFlash(notice)
	}
	if err == nil {
		err = k.SetSealed(c, CookieFlash, f, flashFor)
	}
	if err != nil {
		k.log.Warn("flash", "err", err)
		return render()
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// TakeFlash is what the POST that redirected to this GET left for it (ok
// false: nothing, the page is shown plain); it is used up.
func (k *Kit) TakeFlash(c echo.Context) (status int, errMsg, notice i18n.Msg, ok bool) {
	if k.CookieValue(c, CookieFlash) == "" {
		return 0, i18n.Msg{}, i18n.Msg{}, false
	}
	k.ClearCookie(c, CookieFlash)
	var f flash
	if err := k.OpenSealed(c, CookieFlash, &f); err != nil || f.URI != c.Request().URL.RequestURI() ||
		c.Request().Method != http.MethodGet || f.Status < 200 || f.Status > 599 {
		return 0, i18n.Msg{}, i18n.Msg{}, false
	}
	return f.Status, f.Error.msg(), f.Notice.msg(), true
}
