module github.com/tokengate/traefik-oauth2-introspection

go 1.22
