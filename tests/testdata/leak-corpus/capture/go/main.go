// Command capture prints the zap and logrus JSON lines of the leak corpus.
//
// Strategy: one real *http.Request (httptest, as a handler sees it, with the client
// address its trusted proxy reported) is logged by each logger the way Go services log a
// failed request: the error, the request's method, URL, headers and remote address, the
// user and a context map. zap uses its production JSON encoder (so an error-level entry
// also carries zap's own "stacktrace"); logrus its JSONFormatter with WithError. The lines
// go to LINES_DIR/zap.log and LINES_DIR/logrus.log; ../wrap_lines.py turns them into OTLP
// log records. Personal values come from ../plants.tsv.
//
// usage: go run . LINES_DIR
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func readPlants() map[string]string {
	f, err := os.Open(filepath.Join("..", "plants.tsv"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	out := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		parts := strings.SplitN(scanner.Text(), "\t", 3)
		if len(parts) == 3 {
			out[parts[0]] = strings.ReplaceAll(parts[2], `\n`, "\n")
		}
	}
	return out
}

type fields struct {
	msg     string
	err     error
	stack   string
	req     map[string]any
	user    user
	context map[string]any
}

func fieldsOf(plants map[string]string, name string) fields {
	L := func(role string) string { return plants["logger."+name+"."+role] }
	r := httptest.NewRequest("POST", "/login?next=%2Fhome", nil)
	r.Header.Set("Authorization", "Bearer "+L("bearer"))
	r.Header.Set("Cookie", "sid="+L("cookie")+"; theme=dark")
	r.Header.Set("X-Forwarded-For", L("fwd_ip"))
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r.RemoteAddr = L("remote_ip") + ":51234"
	err := errors.New("no account for " + L("err_email"))
	return fields{
		msg:   "login failed for " + L("msg_email"),
		err:   err,
		stack: fmt.Sprintf("%s\n%s", err, debug.Stack()),
		req: map[string]any{
			"method": r.Method, "url": r.URL.String(), "headers": r.Header, "remoteAddress": r.RemoteAddr,
		},
		user:    user{ID: L("user_id"), Email: L("user_email"), Name: L("user_name")},
		context: map[string]any{"ip": L("ctx_ip6"), "sessionId": L("session"), "note": "client retried with password=" + L("password")},
	}
}

func zapLines(plants map[string]string) []byte {
	f := fieldsOf(plants, "zap")
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.InfoLevel)
	logger := zap.New(core, zap.AddCaller(), zap.AddStacktrace(zap.ErrorLevel)).With(zap.String("service", "checkout"))
	logger.Info("request received", zap.Any("req", f.req), zap.Any("user", f.user), zap.String("route", "/login"))
	logger.Error(f.msg, zap.Error(f.err),
		zap.Any("err", map[string]any{"message": f.err.Error(), "stack": f.stack}),
		zap.Any("req", f.req), zap.Any("user", f.user), zap.Any("context", f.context))
	_ = logger.Sync()
	return buf.Bytes()
}

func logrusLines(plants map[string]string) []byte {
	f := fieldsOf(plants, "logrus")
	var buf bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&buf)
	logger.SetFormatter(&logrus.JSONFormatter{})
	entry := logger.WithField("service", "checkout")
	entry.WithFields(logrus.Fields{"req": f.req, "user": f.user, "route": "/login"}).Info("request received")
	entry.WithFields(logrus.Fields{"req": f.req, "user": f.user, "context": f.context, "stack": f.stack}).
		WithError(f.err).Error(f.msg)
	return buf.Bytes()
}

func main() {
	dir := os.Args[1]
	plants := readPlants()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	for name, data := range map[string][]byte{"zap": zapLines(plants), "logrus": logrusLines(plants)} {
		if err := os.WriteFile(filepath.Join(dir, name+".log"), data, 0o644); err != nil {
			panic(err)
		}
	}
}
