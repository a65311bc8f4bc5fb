package loader

import (
	"net/http"
	"net/http/httptest"
)

// backend is the backend behind the middleware: it records what reached it.
type backend struct {
	calls  int
	header http.Header
}

func (n *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.calls++
	n.header = r.Header.Clone()
	w.WriteHeader(http.StatusOK)
}

// send sends GET / with a bearer token through h; "" sends no Authorization header.
func send(h http.Handler, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
