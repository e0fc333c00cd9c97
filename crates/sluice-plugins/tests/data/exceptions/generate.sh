#!/bin/sh
# Regenerates the trace corpus: runs each program in src/ with its runtime and keeps what it printed to
# stderr (PHP: its error log, which the CLI writes to stderr). Run from anywhere; needs java/javac, python3, node, perl, go, ruby, php.
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/sluice-traces
rm -rf "$work" && mkdir -p "$work" && cp "$here"/src/* "$work"/ && cd "$work" || exit 1
javac Main.java LogTrace.java && java Main 2> "$here/java.txt"
java -Djava.util.logging.SimpleFormatter.format='%4$s %5$s%6$s%n' LogTrace 2> "$here/java_logging.txt"
python3 trace.py 2> "$here/python.txt"
python3 chained.py 2> "$here/python_chained.txt"
node trace.js 2> "$here/node.txt"
perl trace.pl 2> "$here/perl.txt"
go build -o panic panic.go && ./panic 2> "$here/go.txt"
ruby trace.rb 2> "$here/ruby.txt"
php -d display_errors=0 -d log_errors=1 -d html_errors=0 trace.php 2> "$here/php.txt"
exit 0
