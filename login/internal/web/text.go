package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/storage"
)

// MsgBadText answers a request with text no browser sends.
var MsgBadText = i18n.M("error.bad_request")

// RejectInvalidText is the pages' boundary check: a query or form value
// (or name) that is not valid UTF-8 or holds a NUL byte is a bad request,
// answered before any handler looks it up or stores it. Browsers encode
// forms of our UTF-8 pages as UTF-8 and cannot type a NUL; such bytes come
// from tools and attackers, and PostgreSQL cannot store them (the storage
// layer refuses them too, as the last line). Values compared as secrets
// (passwords) are not special: a password a browser can send passes.
func (k *Kit) RejectInvalidText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !valuesValid(c.QueryParams()) {
			return BadRequest(MsgBadText, errors.New("query with invalid text"))
		}
		if m := c.Request().Method; m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch {
			if isForm(c.Request()) {
				form, err := c.FormParams()
				if err != nil {
					var mbe *http.MaxBytesError
					var he *echo.HTTPError
					if errors.As(err, &mbe) || errors.As(err, &he) { // too large: the handler's answer (413)
						return err
					}
					return BadRequest(MsgBadText, err)
				}
				if !valuesValid(form) {
					return BadRequest(MsgBadText, errors.New("form with invalid text"))
				}
			}
		}
		return next(c)
	}
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

func valuesValid(vs map[string][]string) bool {
	for k, v := range vs {
		if !storage.ValidText(k) {
			return false
		}
		for _, x := range v {
			if !storage.ValidText(x) {
				return false
			}
		}
	}
	return true
}
