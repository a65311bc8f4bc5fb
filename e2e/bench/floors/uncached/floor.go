// Package flooruncached is the benchmark's "floor, uncached" row: the least an
// introspecting middleware does when it asks the endpoint on every request. One POST with
// the token form-encoded and client_secret_basic, the JSON answer decoded into a map,
// active == true, the next handler. It checks nothing else and is a figure to measure
// against, not a middleware to use.
package flooruncached

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Config names the endpoint and the client.
type Config struct {
	Endpoint     string `json:"endpoint"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// CreateConfig returns an empty configuration.
func CreateConfig() *Config { return &Config{} }

type floor struct {
	next     http.Handler
	endpoint string
	basic    string
	client   *http.Client
}

// New builds the floor with one keep-alive client, as the plugin has.
func New(_ context.Context, next http.Handler, config *Config, _ string) (http.Handler, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 128
	pair := url.QueryEscape(config.ClientID) + ":" + url.QueryEscape(config.ClientSecret)
	return &floor{
		next:     next,
		endpoint: config.Endpoint,
		basic:    "Basic " + base64.StdEncoding.EncodeToString([]byte(pair)),
		client:   &http.Client{Transport: transport},
	}, nil
}

func (f *floor) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	auth := req.Header.Get("Authorization")
	if len(auth) < len("Bearer x") || !strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	body := strings.NewReader("token=" + url.QueryEscape(auth[len("Bearer "):]))
	call, err := http.NewRequestWithContext(req.Context(), http.MethodPost, f.endpoint, body)
	if err != nil {
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	call.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	call.Header.Set("Authorization", f.basic)
	resp, err := f.client.Do(call)
	if err != nil {
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer map[string]interface{}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(data, &answer) != nil {
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	if answer["active"] != true {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	f.next.ServeHTTP(rw, req)
}
