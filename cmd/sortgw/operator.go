package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sortgw/gateway/operators"
)

// cmdOperator is `sortgw operator add`: it adds a technician account to
// the operators file, or replaces the account of that name, reading the
// PIN (one line) from stdin so that it is neither in the shell history
// nor in the process list.
func cmdOperator(_ context.Context, args []string, stdout, stderr io.Writer) int {
	return operatorMain(args, os.Stdin, stdout, stderr)
}

const operatorUsage = `usage: sortgw operator add -file F -name N -role R   (the PIN, 4 or more digits, on stdin)

Adds the technician N with role R (technician, lead or viewer) to the
operators file F (gateway.operators_file), or replaces N's role and PIN.
The file is rewritten atomically, mode 0600; a running gateway reads it
again within a second. Example:
  echo "$PIN" | sortgw operator add -file /etc/sortgw/operators -name alice -role technician
`

func operatorMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, operatorUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, operatorUsage)
		return 2
	}
	fs := flag.NewFlagSet("operator add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), operatorUsage) }
	file := fs.String("file", "", "operators file (gateway.operators_file)")
	name := fs.String("name", "", "the technician's name (1-32 letters, digits, . _ -)")
	role := fs.String("role", "", "technician, lead or viewer")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *file == "" || *name == "" || *role == "" {
		fmt.Fprintln(stderr, "sortgw operator add: -file, -name and -role are required, and nothing else")
		return 2
	}
	r, err := operators.ParseRole(*role)
	if err != nil {
		fmt.Fprintf(stderr, "sortgw operator add: -role: %v\n", err)
		return 2
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 256)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "sortgw operator add: read the PIN from stdin: %v\n", err)
		return 1
	}
	pin := strings.TrimRight(line, "\r\n")
	replaced, err := operators.Add(*file, *name, r, pin, operators.DefaultIterations, nil)
	if err != nil {
		fmt.Fprintf(stderr, "sortgw operator add: %v\n", err)
		return 1
	}
	verb := "added"
	if replaced {
		verb = "replaced"
	}
	fmt.Fprintf(stdout, "%s %s (%s) in %s\n", verb, *name, r, *file)
	return 0
}
