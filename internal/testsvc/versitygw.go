package testsvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityGWVersion is the versitygw that .ci/run installs.
const VersityGWVersion = "v1.8.0"

const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@" + VersityGWVersion

// S3 is a running versitygw: an S3-compatible server on plain HTTP on
// loopback, keeping its buckets as folders of a temporary folder.
type S3 struct {
	Endpoint  string // "127.0.0.1:PORT", as an S3 client takes it
	AccessKey string
	SecretKey string
	Bucket    string // a bucket made for the test, empty
	// CAFile, for a server started by StartS3TLS, is the PEM certificate
	// of the private CA that signed the server's certificate; the server
	// then speaks HTTPS only.
	CAFile string

	// bin and args start the server again on the same port and folder
	// after Stop; proc is the running one.
	bin  string
	args []string
	proc *process
	// logs are the output files of every server started, the running
	// one's last.
	logs []string
}

// StartS3 starts a versitygw for the test, makes an empty bucket in it and
// stops the server at cleanup. It fails the test, with install
// instructions, when versitygw is not installed.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	return startS3(t, false)
}

// StartS3TLS is StartS3 with a server that speaks HTTPS with a certificate
// for 127.0.0.1 signed by a private CA made for the test (S3.CAFile).
func StartS3TLS(t testing.TB) *S3 {
	t.Helper()
	return startS3(t, true)
}

func startS3(t testing.TB, withTLS bool) *S3 {
	t.Helper()
	bin, err := binary("versitygw")
	if err != nil {
		t.Fatalf("versitygw, the S3 server the S3 vault tests use, is not installed: %v\ninstall it with: %s", err, versitygwInstall)
	}
	dir := t.TempDir()
	s := &S3{AccessKey: "vigil-test-access", SecretKey: "vigil-test-secret-key", Bucket: "vigil-test"}
	var tlsArgs []string
	if withTLS {
		var cert, key string
		s.CAFile, cert, key = makeCertificates(t, dir)
		tlsArgs = []string{"--cert", cert, "--key", key}
	}
	// A free port may be taken between closing its probe and versitygw
	// binding it; try again with a new one.
	var log string
	for try := 0; try < 3; try++ {
		addr := freePort(t)
		root := filepath.Join(dir, fmt.Sprintf("data-%d", try))
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatalf("create versitygw data folder: %v", err)
		}
		args := append(append([]string{"--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr}, tlsArgs...), "posix", root)
		var proc *process
		proc, log = runServer(t, "versitygw", bin, args, addr)
		if proc != nil {
			s.Endpoint, s.bin, s.args, s.proc = addr, bin, args, proc
			s.logs = append(s.logs, proc.log)
			s.MakeBucket(t, s.Bucket)
			return s
		}
	}
	t.Fatalf("versitygw did not start; its output:\n%s", log)
	return nil
}

// Stop kills the server at once, as a crash would, so that its port
// refuses connections and requests in flight are cut. Its buckets stay in
// their folder for Restart. Stop and Restart are for the test's own
// goroutine, not for several at once.
func (s *S3) Stop() {
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart starts the server Stop killed again, on the same port and with
// the same buckets, and waits until it accepts connections.
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	if s.proc != nil {
		t.Fatalf("restart versitygw at %s: it is running; Stop it first", s.Endpoint)
	}
	proc, log := runServer(t, "versitygw", s.bin, s.args, s.Endpoint)
	if proc == nil {
		t.Fatalf("versitygw did not start again on %s (another process may have taken the port since Stop); its output:\n%s", s.Endpoint, log)
	}
	s.proc = proc
	s.logs = append(s.logs, proc.log)
}

// Requests counts the requests of the given HTTP method the server has
// answered since it was started, over its restarts, from its request
// log: versitygw writes one line per request, such as
// "17:03:48 | vgw | 200 | 1.2ms | 127.0.0.1 | GET | /bucket/key | - |".
func (s *S3) Requests(t testing.TB, method string) int {
	t.Helper()
	n := 0
	for _, name := range s.logs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("read the versitygw request log: %v", err)
		}
		n += strings.Count(string(b), " | "+method+" | ")
	}
	return n
}

// MakeBucket makes a bucket of that name.
func (s *S3) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s in versitygw at %s: %v", name, s.Endpoint, err)
	}
}

// Client is an S3 client of the server, for checking what it holds.
func (s *S3) Client(t testing.TB) *minio.Client {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAFile != "" {
		caPEM, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatalf("read the test CA: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:    s.CAFile != "",
		Transport: transport,
	})
	if err != nil {
		t.Fatalf("S3 client of versitygw at %s: %v", s.Endpoint, err)
	}
	return c
}

// makeCertificates writes a private CA's certificate and a server
// certificate for 127.0.0.1 it signed, with the server's key, into dir.
func makeCertificates(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	fail := func(err error) {
		if err != nil {
			t.Fatalf("make test certificates: %v", err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fail(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	fail(err)
	ca, err := x509.ParseCertificate(caDER)
	fail(err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fail(err)
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &srvKey.PublicKey, caKey)
	fail(err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	fail(err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		fail(os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// process is a server runServer started.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string // the file its output goes to
}

// kill ends the server and everything it started with SIGKILL, and waits
// for it to be gone.
func (p *process) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// runServer starts a server, waits until its addresses accept and stops it
// at cleanup. It returns nil, with the server's output, when the server
// exits first.
func runServer(t testing.TB, name, bin string, args []string, addrs ...string) (*process, string) {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatalf("create %s log: %v", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: logFile.Name()}
	go func() { cmd.Wait(); close(p.exited) }()
	readLog := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }

	deadline := time.Now().Add(15 * time.Second)
	for !acceptsAll(addrs) {
		select {
		case <-p.exited:
			return nil, readLog()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("%s did not accept on %v within 15s; its output:\n%s", name, addrs, readLog())
		}
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.kill()
		}
	})
	return p, ""
}

func acceptsAll(addrs []string) bool {
	for _, a := range addrs {
		if !accepts(a) {
			return false
		}
	}
	return true
}
