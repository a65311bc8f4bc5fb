package introspection

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzExtract: whatever the Authorization header holds, extraction never panics, only ever
// yields a b64token within maxTokenLength, and its one-regexp fast path answers exactly as
// the step-by-step reading does.
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer  abc==", "Bearer", "Bearer ", "Bearer\tabc", "Bearerish abc",
		"Basic dXNlcjpwYXNz", "Bearer a b", "Bearer =", "Bearer \xff", "", "B", "Bearer abc\n",
		"BEARER " + strings.Repeat("a", 64), "Bearer " + strings.Repeat("a", 65), "Bearer a=b",
	} {
		f.Add(seed)
	}
	fast := &middleware{tokenHeader: "Authorization", bearerScheme: true, bearerOnly: true, maxTokenLength: 64}
	steps := &middleware{tokenHeader: "Authorization", bearerScheme: true, maxTokenLength: 64}
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest("GET", "http://api.example/", nil)
		req.Header["Authorization"] = []string{value}
		token, rej := fast.extract(req)
		if stepToken, stepRej := steps.extract(req); token != stepToken || rej != stepRej {
			t.Fatalf("%q: the fast path gives %q, %v; the steps %q, %v", value, token, rej, stepToken, stepRej)
		}
		if rej != nil {
			if token != "" {
				t.Fatalf("a rejection with a token %q", token)
			}
			return
		}
		if len(token) > 64 || !isB64token(token) || !strings.HasSuffix(value, token) {
			t.Fatalf("extracted %q from %q", token, value)
		}
	})
}

// FuzzParseResult: whatever the endpoint answers, parsing never panics, and a result is
// active only when the answer's "active" is the JSON true.
func FuzzParseResult(f *testing.F) {
	for _, seed := range []string{
		`{"active":true}`, `{"active":false}`, `{"active":"true"}`, `{"active":1}`, `{}`, `[]`, `null`,
		`{"active":true,"exp":1e308,"nbf":"12","aud":["a",1],"scope":["a",{}],"iss":7}`,
		`{"active":true,"exp":"NaN"}`, `{"active":true,"scope":"  a  b "}`, `{"active":true}x`,
		`{"active":false,"active":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseResult(data)
		if err != nil {
			if res != nil {
				t.Fatalf("an error with a result")
			}
			return
		}
		if res.active && res.claims["active"] != true {
			t.Fatalf("active result from %q", data)
		}
		for name := range res.claims {
			claimValue(res.claims[name])
		}
	})
}
