package testsvc

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
)

// An S3 server stopped refuses connections on its port, and started again
// serves the same port with the objects it held.
func TestS3StopRestart(t *testing.T) {
	t.Parallel()
	s := StartS3(t)
	c := s.Client(t)
	const body = "kept across the outage\n"
	if _, err := c.PutObject(t.Context(), s.Bucket, "kept.txt", strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put an object: %v", err)
	}

	s.Stop()
	if _, err := net.Dial("tcp", s.Endpoint); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s after Stop: %v, want connection refused", s.Endpoint, err)
	}

	s.Restart(t)
	o, err := c.GetObject(t.Context(), s.Bucket, "kept.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get the object after Restart: %v", err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || string(got) != body {
		t.Fatalf("object after Restart = %q, %v; want %q", got, err, body)
	}
}
