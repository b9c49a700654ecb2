package config

import (
	"net"
	"strings"
	"time"
)

// IsS3 reports whether the vault's storage is S3-compatible object storage
// (s3://bucket/prefix) rather than a local folder.
func (v Vault) IsS3() bool {
	scheme, _, ok := strings.Cut(v.Storage, "://")
	return ok && strings.EqualFold(scheme, "s3")
}

// s3Keys names the first S3 setting a vault has, for refusing them on a
// folder vault.
func (v Vault) s3Keys() string {
	switch {
	case v.Endpoint != "":
		return "endpoint"
	case v.Region != "":
		return "region"
	case v.PathStyle != nil:
		return "path_style"
	case v.Insecure:
		return "insecure"
	case v.CAFile != "":
		return "ca_file"
	case v.AccessKeyEnv != "" || v.AccessKeyFile != "":
		return "access_key_env"
	case v.SecretKeyEnv != "" || v.SecretKeyFile != "":
		return "secret_key_env"
	case v.RetryFor != 0:
		return "retry_for"
	}
	return ""
}

// S3PathStyle reports whether Kopia's S3 storage (through minio-go)
// addresses buckets by path (http://host/bucket/key) on the endpoint: it
// does on every endpoint but AWS's, Google's and Alibaba's, which it
// addresses by host name (http://bucket.host/key). Kopia offers no switch,
// so path_style in the config is checked against this, not applied.
func S3PathStyle(endpoint string) bool {
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, virtual := range []string{"amazonaws.com", "amazonaws.com.cn", "storage.googleapis.com", "aliyuncs.com"} {
		if host == virtual || strings.HasSuffix(host, "."+virtual) {
			return false
		}
	}
	return true
}

func validateS3(add func(field, format string, args ...any), f string, v Vault) {
	_, rest, _ := strings.Cut(v.Storage, "://")
	if bucket, _, _ := strings.Cut(rest, "/"); bucket == "" {
		add(f+".storage", "%q names no bucket: write s3://bucket or s3://bucket/prefix", v.Storage)
	}
	if strings.Contains(v.Endpoint, "://") || strings.Contains(v.Endpoint, "/") {
		add(f+".endpoint", "%q must be host or host:port, without http:// or a path (set insecure: true for plain HTTP)", v.Endpoint)
	}
	endpoint := v.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	if v.PathStyle != nil && *v.PathStyle != S3PathStyle(endpoint) {
		if *v.PathStyle {
			add(f+".path_style", "Kopia's S3 storage addresses buckets on %s by host name and cannot be told otherwise: remove path_style", endpoint)
		} else {
			add(f+".path_style", "Kopia's S3 storage addresses buckets on %s by path and cannot be told otherwise: remove path_style", endpoint)
		}
	}
	if v.RetryFor < Duration(time.Second) {
		add(f+".retry_for", "%s is less than 1s: give how long a failing request to the bucket is tried again, such as 2m", time.Duration(v.RetryFor))
	}
	if v.Insecure && v.CAFile != "" {
		add(f+".ca_file", "is for TLS, and insecure: true turns TLS off: keep one")
	}
	pair := func(what, env, file string) bool {
		if env != "" && file != "" {
			add(f, "vault %q has both %s_env and %s_file: keep one", v.Name, what, what)
		}
		return env != "" || file != ""
	}
	access := pair("access_key", v.AccessKeyEnv, v.AccessKeyFile)
	secret := pair("secret_key", v.SecretKeyEnv, v.SecretKeyFile)
	if access != secret {
		add(f, "vault %q has only one of its S3 access key and secret key: give access_key_env and secret_key_env (or the _file ones), or neither to use the AWS environment or instance role", v.Name)
	}
}
