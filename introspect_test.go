package introspection

import (
	"net/http"
	"net/url"
	"testing"
)

// TestIntrospectionRequest: what the endpoint receives (RFC 7662 §2.1, RFC 6749 §2.3).
func TestIntrospectionRequest(t *testing.T) {
	cases := []struct {
		desc      string
		configure func(*Config)
		auth      string     // the Authorization header the endpoint must see
		form      url.Values // the form it must see, beside the token
	}{
		{
			desc: "client_secret_basic, the RFC 6749 §2.3.1 vector",
			configure: func(c *Config) {
				c.ClientID = "1PpG/Q 1"
				c.ClientSecret = "z/tZ9VwFZqApmIQ+ZH1I5pLk/uB4ud:X2/8bL+wfFTt1rFw="
			},
			auth: "Basic MVBwRyUyRlErMTp6JTJGdFo5VndGWnFBcG1JUSUyQlpIMUk1cExrJTJGdUI0dWQlM0FYMiUyRjhiTCUyQndmRlR0MXJGdyUzRA==",
			form: url.Values{"token_type_hint": {"access_token"}},
		},
		{
			desc:      "client_secret_post",
			configure: func(c *Config) { c.AuthMethod = "client_secret_post" },
			form:      url.Values{"token_type_hint": {"access_token"}, "client_id": {"traefik"}, "client_secret": {"s3cret-value"}},
		},
		{
			desc:      "none with a client id",
			configure: func(c *Config) { c.AuthMethod = "none"; c.ClientSecret = "" },
			form:      url.Values{"token_type_hint": {"access_token"}, "client_id": {"traefik"}},
		},
		{
			desc:      "none, no hint",
			configure: func(c *Config) { c.AuthMethod = "none"; c.ClientSecret = ""; c.ClientID = ""; c.TokenTypeHint = "" },
			form:      url.Values{},
		},
		{
			desc: "another hint",
			configure: func(c *Config) {
				c.AuthMethod = "none"
				c.ClientSecret = ""
				c.ClientID = ""
				c.TokenTypeHint = "urn:example:token"
			},
			form: url.Values{"token_type_hint": {"urn:example:token"}},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("to+k/=", activeClaims())
			config := testConfig(as.URL + "/oauth2/introspect?tenant=a")
			tc.configure(config)
			m, _ := newMiddleware(t, config)

			if rec := serve(m, bearer("to+k/=")); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			req, form := as.lastCall()
			if req.Method != http.MethodPost || req.URL.Path != "/oauth2/introspect" || req.URL.RawQuery != "tenant=a" {
				t.Errorf("request = %s %s, want POST /oauth2/introspect?tenant=a", req.Method, req.URL)
			}
			if got := req.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := req.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
			if got := req.Header.Get("Authorization"); got != tc.auth {
				t.Errorf("Authorization = %q, want %q", got, tc.auth)
			}
			if form.Get("token") != "to+k/=" {
				t.Errorf("token = %q, want to+k/=", form.Get("token"))
			}
			form.Del("token")
			if form.Encode() != tc.form.Encode() {
				t.Errorf("form = %q, want %q", form.Encode(), tc.form.Encode())
			}
		})
	}
}

func TestExtraHeaders(t *testing.T) {
	as, config := activeServer(t)
	config.Headers = map[string]string{"x-tenant": "blue", "Host": "auth.internal"}
	m, _ := newMiddleware(t, config)
	serve(m, bearer("tok"))
	req, _ := as.lastCall()
	if req.Header.Get("X-Tenant") != "blue" || req.Host != "auth.internal" {
		t.Errorf("X-Tenant = %q, Host = %q; want blue, auth.internal", req.Header.Get("X-Tenant"), req.Host)
	}
}
