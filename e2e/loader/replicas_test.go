package loader

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	introspection "github.com/tokengate/traefik-oauth2-introspection"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The README's "Several Traefik replicas" examples: besides the middleware, each holds the
// deployment around it (the replicas, where Redis runs, the Secret the files come from),
// and those must fit the middleware's keys.

// replicasHeading is the README's heading of those examples.
const replicasHeading = "Several Traefik replicas (docker compose and Kubernetes)"

// fromReplicasCompose decodes the api service's labels as the docker provider does, and
// checks the compose file around them: more than one Traefik replica, the sharedCache host
// a service of the file, and every file the middleware reads a secret mounted into Traefik.
func fromReplicasCompose(t *testing.T, block string) map[string]interface{} {
	raw := decodeCompose(t, block).Plugin(t, "api-auth", "introspection")
	var compose struct {
		Services map[string]struct {
			Deploy struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
			Secrets []string `yaml:"secrets"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal([]byte(block), &compose); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	traefik, ok := compose.Services["traefik"]
	if !ok || traefik.Deploy.Replicas < 2 {
		t.Errorf("the compose file's traefik service has %d replicas, want several", traefik.Deploy.Replicas)
	}
	assertRedisHost(t, raw, func(host string) bool { _, ok := compose.Services[host]; return ok })
	for key, file := range fileKeys(raw) {
		name, ok := strings.CutPrefix(file, "/run/secrets/")
		if !ok || !slices.Contains(traefik.Secrets, name) || compose.Secrets[name].File == "" {
			t.Errorf("%s is %s, want /run/secrets/<name> of a secret of the file that the traefik service mounts", key, file)
		}
	}
	return raw
}

// fromReplicasCRD returns the decoder of the Middleware among blocks, the examples under
// replicasHeading: it checks the Helm values (several replicas, the volumes) and the Secret
// beside it: each file the middleware reads is in a mounted volume, and those of the
// Secret's volume are keys of the Secret.
func fromReplicasCRD(blocks []string) func(*testing.T, string) map[string]interface{} {
	return func(t *testing.T, block string) map[string]interface{} {
		raw := DecodeCRDMiddleware(t, block)["introspection"]
		if raw == nil {
			t.Fatal("spec.plugin has no introspection")
		}
		var values struct {
			Deployment struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deployment"`
			Volumes []struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
				Type      string `yaml:"type"`
			} `yaml:"volumes"`
		}
		var secret struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			StringData map[string]string `yaml:"stringData"`
		}
		for _, b := range blocks {
			switch {
			case strings.Contains(b, "kind: Secret"):
				if err := yaml.Unmarshal([]byte(b), &secret); err != nil {
					t.Fatalf("the Secret: %v", err)
				}
			case strings.Contains(b, "deployment:"):
				if err := yaml.Unmarshal([]byte(b), &values); err != nil {
					t.Fatalf("the Helm values: %v", err)
				}
			}
		}
		if values.Deployment.Replicas < 2 {
			t.Errorf("the Helm values have %d replicas, want several", values.Deployment.Replicas)
		}
		if secret.Kind != "Secret" || len(secret.StringData) == 0 {
			t.Fatalf("no Secret with stringData under %q", replicasHeading)
		}
		for key, file := range fileKeys(raw) {
			dir, name := path.Split(file)
			mounted := false
			for _, v := range values.Volumes {
				if v.MountPath+"/" != dir || v.Type != "secret" {
					continue
				}
				mounted = true
				if _, ok := secret.StringData[name]; v.Name == secret.Metadata.Name && !ok {
					t.Errorf("%s is %s, but the Secret %s has no key %s", key, file, secret.Metadata.Name, name)
				}
			}
			if !mounted {
				t.Errorf("%s is %s, in no secret volume of the Helm values", key, file)
			}
		}
		return raw
	}
}

// fileKeys are the keys of raw that name a file, with the file.
func fileKeys(raw map[string]interface{}) map[string]string {
	files := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok && strings.HasSuffix(k, "File") {
			files[k] = s
		}
	}
	return files
}

// assertRedisHost checks that raw's sharedCache is a redis:// or rediss:// URL without a
// password whose host known says is there.
func assertRedisHost(t *testing.T, raw map[string]interface{}, known func(host string) bool) {
	t.Helper()
	s, _ := raw["sharedCache"].(string)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Port() == "" {
		t.Fatalf("sharedCache is %q, want redis://host:port or rediss://host:port (%v)", s, err)
	}
	if _, has := u.User.Password(); has {
		t.Errorf("sharedCache %q holds a password: New refuses it", s)
	}
	if !known(u.Hostname()) {
		t.Errorf("sharedCache's host %s is no service of the example", u.Hostname())
	}
}

// sharedCacheFiles are the files the examples' shared cache keys name, in the cluster
// or the compose file's secrets, made here: a key file of 48 random bytes in base64 as the
// README suggests, a password and a CA certificate.
func sharedCacheFiles(t *testing.T) map[string]string {
	t.Helper()
	key := make([]byte, 48)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	ca, err := harness.NewTestCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"sharedCacheKeyFile":      WriteFile(t, "shared-cache-key", []byte(base64.StdEncoding.EncodeToString(key)+"\n")),
		"sharedCachePasswordFile": WriteFile(t, "redis-password", []byte("change-me\n")),
		"sharedCacheCAFile":       ca.CertFile,
	}
}

// unreachableRedis is sharedCache's URL with its host and port replaced by a 127.0.0.1
// port nothing listens on: Redis fails, and the endpoint answers.
func unreachableRedis(t *testing.T, sharedCache string) string {
	t.Helper()
	u, err := url.Parse(sharedCache)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host, err = harness.FreeAddr(); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// assertSharedCacheConfig checks that each sharedCache key of raw reaches a field of the
// compiled Config, decoded as Traefik decodes it: a key Config does not have is dropped
// without a word.
func assertSharedCacheConfig(t *testing.T, raw map[string]interface{}) {
	t.Helper()
	config := introspection.CreateConfig()
	if err := DecodeConfig(config, raw); err != nil {
		t.Fatalf("decoding into the compiled Config: %v", err)
	}
	v := reflect.ValueOf(config).Elem()
	for key, want := range raw {
		if !strings.HasPrefix(key, "sharedCache") {
			continue
		}
		f, ok := configField(v, key)
		if !ok {
			t.Errorf("Config has no field for %s: Traefik would drop it", key)
			continue
		}
		if got := fmt.Sprint(f.Interface()); got != fmt.Sprint(want) {
			t.Errorf("Config's field for %s is %q, want %q", key, got, want)
		}
	}
}

// configField is the field of the struct v that mapstructure decodes key into: by its
// mapstructure tag, else by its name, in any letter case.
func configField(v reflect.Value, key string) (reflect.Value, bool) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ","); tag != "" {
			name = tag
		}
		if strings.EqualFold(name, key) {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}
