package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/candado-dev/candado/client"
)

// Exit codes of the client subcommands, after sysexits.h where one fits. The
// lock subcommand otherwise passes its command's exit code through.
const (
	exitOK            = 0
	exitFailure       = 1  // any other error
	exitUsage         = 64 // EX_USAGE: bad arguments, or the server answered bad_request or unsupported
	exitLimitMismatch = 65 // EX_DATAERR: acquire/lock: held with another --limit, or in the other mode
	exitUnavailable   = 69 // EX_UNAVAILABLE: server unreachable, 503 or 429 until --timeout
	exitHeld          = 73 // EX_CANTCREAT: held by another owner after --wait
	exitNotHeld       = 74 // release/heartbeat: the lease is not this owner's
	exitLeaseLost     = 75 // EX_TEMPFAIL: lock: the lease was lost while the command ran
	exitNoPerm        = 77 // EX_NOPERM: unauthorized (bad or missing token)
	exitForbidden     = 78 // EX_CONFIG: forbidden: the token's scope does not cover the verb or lock
	exitCannotExec    = 126
	exitNotFound      = 127
)

const defaultServer = "http://127.0.0.1:8080"

const topUsage = `usage: candado [COMMAND] [ARGS...]

Candado is a lock service: named leases with an owner token, a TTL and a
fence that strictly increases per lock.

Commands:
  serve       run the server (the default with no arguments)
  lock        hold a lock while a command runs:  candado lock NAME -- COMMAND [ARGS...]
  acquire     take a lock and print it as JSON
  release     give a lock back
  heartbeat   extend a lock
  status      print the state of a lock as JSON: holders, limit, leases (--prefix P: every held lock under P)
  watch       print one JSON line per change of a lock (or of every lock under --prefix)

Run "candado COMMAND --help" for a command's flags.

Environment:
  CANDADO_SERVER       server URL for the client commands (default ` + defaultServer + `)
  CANDADO_AUTH_TOKEN   bearer token (the server requires it when it has one set)
  CANDADO_OWNER        owner token for acquire, release and heartbeat

Exit codes of the client commands:
  0    success
  1    other error
  64   usage error, or the server refused the request as bad (bad name, ttl...)
       or unsupported (its backend, quorum mode, cannot do --limit, --shared, --lock-delay)
  65   acquire/lock: the lock is held with another --limit, or in the other mode
       (--shared on a semaphore, or --limit N on a lock of shared holders)
  69   server unavailable (unreachable, 503, or 429: too many waiters of this token)
       until --timeout ran out
  73   acquire/lock: the lock is held by others (after --wait): by another owner,
       all N holders of a semaphore, or the other mode; or waiters are queued
       ahead; or a lock-delay is running
  74   release/heartbeat: the lease is not this owner's (expired, released)
  75   lock: the lease was lost while the command ran; the command was stopped
  77   unauthorized: missing or wrong token
  78   forbidden: the token is known, but its scope does not cover this verb or lock
lock exits with its command's code otherwise (128+N if a signal N killed it,
126 if it could not be executed, 127 if it was not found).
`

// cli runs one client subcommand. Its fields are the process's environment,
// so tests can run it in-process.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func newCLI() *cli {
	return &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
}

// run dispatches a client subcommand (args without the program name) and
// returns the exit code. "serve" is handled by main.
func (c *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, topUsage)
		return exitUsage
	}
	switch name, rest := args[0], args[1:]; name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "serve" {
			return c.run([]string{rest[0], "--help"})
		}
		if len(rest) > 0 {
			fmt.Fprint(c.stdout, serveUsage)
			return exitOK
		}
		fmt.Fprint(c.stdout, topUsage)
		return exitOK
	case "lock":
		return c.lock(rest)
	case "watch":
		return c.watch(rest)
	case "status":
		if hasPrefixFlag(rest) {
			return c.statusPrefix(rest)
		}
		return c.simple(name, rest)
	case "acquire", "release", "heartbeat":
		return c.simple(name, rest)
	default:
		fmt.Fprintf(c.stderr, "candado: unknown command %q\nRun \"candado --help\" for usage.\n", name)
		return exitUsage
	}
}

const serveUsage = `usage: candado serve    (or candado with no arguments)

Runs the Candado server. It is configured only by these environment variables
(never by unprefixed names such as REDIS_URL):
  CANDADO_REDIS_URL     redis:// or rediss:// URL (single mode). Unset, with nothing
                        else configured and outside Kubernetes (no KUBERNETES_SERVICE_HOST),
                        runs an in-process Redis for a local run. Set but empty, or unset
                        in a pod: the server runs, is not ready and answers lock calls 503
  CANDADO_REDIS_MODE    single (default), sentinel, cluster or quorum
  CANDADO_REDIS_URLS    comma-separated redis:// URLs: the Sentinels, the Cluster's seed
                        nodes or the quorum's masters (modes other than single)
  CANDADO_REDIS_MASTER_NAME  the master's name that the Sentinels monitor (sentinel mode)
  PORT, CANDADO_PORT    listen port (default 8080; PORT wins). A Kubernetes service link
                        in CANDADO_PORT (tcp://IP:PORT) is ignored with a notice
  CANDADO_KEY_PREFIX    prefix of every Redis key (default candado:)
  CANDADO_DEFAULT_TTL   lease length when a request names none (default 30s)
  CANDADO_MAX_TTL       longest lease (default 1h)
  CANDADO_MAX_WAIT      longest wait of an acquire (default 60s); a longer wait is cut
                        and its answer says wait_cut (clients ask again for the rest)
  CANDADO_MAX_WAITERS   most acquires waiting at once in this process (default 1000);
                        past it a waiting acquire answers 503 with Retry-After at once
  CANDADO_MAX_WATCHERS  most watch streams open at once in this process (default 1000);
                        past it a watch answers 503
  CANDADO_MAX_WATCHERS_PER_IDENTITY  most watch streams per token or identity
                        (default 0: no cap); past it 429 too_many_watchers
  CANDADO_AUTH_TOKEN    a bearer token with every right, when set
  CANDADO_TOKENS_FILE   JSON file of scoped tokens (name, sha256, prefixes, verbs),
                        re-read when it changes
  CANDADO_OIDC_ISSUER, CANDADO_OIDC_AUDIENCE  accept OIDC tokens (Knative Eventing's
                        sender identity) from that issuer for that audience
  CANDADO_OIDC_CA_FILE  PEM certificates trusted for the OIDC issuer
  CANDADO_OWNER_KEY     secret key of derived and bound owners (default: one kept in Redis)
  CANDADO_MAX_WAITERS_PER_IDENTITY  most waiting acquires per token or identity
                        (default 0: no cap); past it 429 too_many_waiters
  CANDADO_BACKEND_TIMEOUT  bound of each Redis round trip (default 500ms)
  CANDADO_EVENT_SOURCE  CloudEvents source of reply events (default /candado)
  CANDADO_EVENT_SINK    http(s) URL that gets acquired/released CloudEvents, when set
  CANDADO_REDIS_URL_FILE, CANDADO_AUTH_TOKEN_FILE, CANDADO_OWNER_KEY_FILE
                        read those from files
The server reads a request's headers within 5s and the whole request within
10s, and answers within CANDADO_MAX_WAIT + 20s. SIGTERM or SIGINT stops it
gracefully.
`

// common holds the flags every client subcommand has.
type common struct {
	server, token string
	timeout       time.Duration
}

func (c *cli) commonFlags(fs *flag.FlagSet) *common {
	var o common
	// Defaults from the environment are filled in by client, after parsing,
	// so that --help never prints a secret.
	fs.StringVar(&o.server, "server", "", "server `URL` (default $CANDADO_SERVER, else "+defaultServer+")")
	fs.StringVar(&o.token, "token", "", "bearer `token` (default $CANDADO_AUTH_TOKEN; prefer the environment: arguments are visible to other users)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to retry while the server is unavailable (on top of --wait)")
	return &o
}

// client fills in the environment's defaults and returns a Client.
func (o *common) client(getenv func(string) string) (*client.Client, error) {
	if o.server == "" {
		o.server = getenv("CANDADO_SERVER")
	}
	if o.server == "" {
		o.server = defaultServer
	}
	if o.token == "" {
		o.token = getenv("CANDADO_AUTH_TOKEN")
	}
	return client.New(o.server, &client.Options{AuthToken: o.token})
}

// newFlagSet returns a FlagSet that reports errors on stderr and leaves
// --help to parseArgs.
func (c *cli) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("candado "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags around one positional NAME: flags may come before
// and after it. It returns NAME, what follows the flags after it, and whether
// those were separated by "--". done is set (with the exit code) when the
// caller should stop: --help, or a usage error.
func (c *cli) parseArgs(fs *flag.FlagSet, usage string, args []string) (name string, rest []string, dashdash bool, code int, done bool) {
	fail := func(err error) (string, []string, bool, int, bool) {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usage)
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			return "", nil, false, exitOK, true
		}
		fmt.Fprintf(c.stderr, "Run \"%s --help\" for usage.\n", fs.Name())
		return "", nil, false, exitUsage, true
	}
	if err := fs.Parse(args); err != nil {
		return fail(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(c.stderr, "%s: missing lock NAME\n", fs.Name())
		return fail(errors.New("missing name"))
	}
	name = fs.Arg(0)
	after := fs.Args()[1:]
	if err := fs.Parse(after); err != nil {
		return fail(err)
	}
	rest = fs.Args()
	if i := len(after) - len(rest); i > 0 && after[i-1] == "--" {
		dashdash = true
	}
	return name, rest, dashdash, exitOK, false
}

var usages = map[string]string{
	"acquire": `usage: candado acquire [flags] NAME [flags]

Takes lock NAME and prints the lease as one JSON object:
  {"id":"NAME","state":1,"owner":"...","fence":N,"ttl_ms":N,"holder":"...","mode":"exclusive","limit":1}
Nothing keeps the lease alive: run "candado heartbeat" within the TTL, or use
"candado lock" instead. Without --owner (or CANDADO_OWNER) a random owner is
minted; keep it, release and heartbeat need it. If the lock is held (after
--wait) it exits 73 and prints the current lease, without its owner; if it is
held with another --limit or mode, it exits 65 and prints the lock.
--limit N makes NAME a semaphore of N holders, --shared takes a shared lease;
each holder gets its own owner and fence. Without --holder, no label is sent.

Flags:
`,
	"release": `usage: candado release [flags] NAME [flags]

Gives lock NAME back on behalf of --owner (or CANDADO_OWNER) and prints the
server's answer as one JSON object. Exits 74 if the lease is not this owner's.

Flags:
`,
	"heartbeat": `usage: candado heartbeat [flags] NAME [flags]

Extends the lease of --owner (or CANDADO_OWNER) on lock NAME to --ttl from now
and prints it as one JSON object. Exits 74 if the lease is not this owner's
(an expired lease is never revived).

Flags:
`,
	"status": `usage: candado status [flags] NAME [flags]

Prints the state of lock NAME as one JSON object, never an owner:
  {"id":"NAME","state":0|1,"fence":N,"ttl_ms":N,"holder":"...","mode":"exclusive",
   "limit":N,"holders":N,"waiters":N,"delay_left_ms":N,
   "leases":[{"fence":N,"ttl_ms":N,"holder":"...","mode":"exclusive"}]}
state is 1 while held; fence is the current or last known fence; holder is
the label of the lease (of leader election's leader, say); limit is 1 for a
mutex or shared holders, N for a semaphore; holders counts the live leases
and waiters the queued acquires; leases lists each live lease. Fields that
are empty or 0 are left out.

Flags:
`,
}

// simple runs acquire, release, heartbeat or status.
func (c *cli) simple(cmd string, args []string) int {
	fs := c.newFlagSet(cmd)
	o := c.commonFlags(fs)
	var ttl, wait time.Duration
	var owner string
	if cmd != "status" {
		fs.StringVar(&owner, "owner", "", "owner `token` of the lease (default $CANDADO_OWNER)")
	}
	if cmd == "acquire" || cmd == "heartbeat" {
		fs.DurationVar(&ttl, "ttl", 0, "lease length (default: the server's, 30s unless configured)")
	}
	var extra *acquireFlags
	if cmd == "acquire" {
		fs.DurationVar(&wait, "wait", 0, "how long to wait for a held lock (default: try once)")
		extra = addAcquireFlags(fs, "none")
	}
	name, rest, _, code, done := c.parseArgs(fs, usages[cmd], args)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected arguments %q\nRun \"%s --help\" for usage.\n", fs.Name(), rest, fs.Name())
		return exitUsage
	}
	if owner == "" {
		owner = c.getenv("CANDADO_OWNER")
	}
	if (cmd == "release" || cmd == "heartbeat") && owner == "" {
		fmt.Fprintf(c.stderr, "%s: --owner (or CANDADO_OWNER) is required\n", fs.Name())
		return exitUsage
	}
	if ttl < 0 || wait < 0 {
		fmt.Fprintf(c.stderr, "%s: --ttl and --wait must not be negative\n", fs.Name())
		return exitUsage
	}
	opts := &client.AcquireOptions{TTL: ttl, Wait: wait, Owner: owner}
	if extra != nil {
		if err := extra.check(); err != nil {
			fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
			return exitUsage
		}
		extra.options(opts, "")
	}
	cl, err := o.client(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+o.timeout)
	defer cancel()

	st, err := callOnce(ctx, cl, cmd, name, opts)
	return c.report(fs.Name(), name, st, err)
}

// callOnce makes the one call of acquire, release, heartbeat or status; o
// holds the owner, and the TTL of acquire and heartbeat.
func callOnce(ctx context.Context, cl *client.Client, cmd, name string, o *client.AcquireOptions) (client.Status, error) {
	owner, ttl := o.Owner, o.TTL
	switch cmd {
	case "acquire":
		l, err := cl.Acquire(ctx, name, o)
		if err != nil {
			return client.Status{}, err
		}
		return leaseStatus(l), nil
	case "release":
		st, err := cl.Release(ctx, name, owner)
		if err == nil && st.Owner == "" {
			st.Owner = owner
		}
		return st, err
	case "heartbeat":
		return cl.Heartbeat(ctx, name, owner, ttl)
	}
	return cl.Inspect(ctx, name)
}

// report prints a call's outcome on lock name: the lease as JSON on stdout
// (also the current lease of a refusal), an error on stderr, and returns the
// exit code.
func (c *cli) report(cmd, name string, st client.Status, err error) int {
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Lock != nil && ae.Lock.ID != "" {
			c.printJSON(*ae.Lock) // e.g. the current lease when held
		}
		fmt.Fprintf(c.stderr, "%s %s: %v\n", cmd, name, err)
		return exitCode(err)
	}
	if st.ID == "" {
		st.ID = name
	}
	c.printJSON(st)
	return exitOK
}

// printJSON prints st as one line of JSON (see leaseLine).
func (c *cli) printJSON(st client.Status) {
	b, _ := json.Marshal(toLine(st))
	fmt.Fprintf(c.stdout, "%s\n", b)
}

// exitCode maps a client error to the documented exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, client.ErrHeld):
		return exitHeld
	case errors.Is(err, client.ErrLimitMismatch):
		return exitLimitMismatch
	case errors.Is(err, client.ErrNotHeld):
		return exitNotHeld
	case errors.Is(err, client.ErrUnauthorized):
		return exitNoPerm
	case errors.Is(err, client.ErrForbidden):
		return exitForbidden
	case errors.Is(err, client.ErrBadRequest): // also ErrUnsupported
		return exitUsage
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrTooManyRequests), errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable
	default:
		return exitFailure
	}
}
