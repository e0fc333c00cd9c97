# Perl's confess: a trace shape no detect_exceptions language covers.
use strict;
use warnings;
use Carp;

sub inner { confess "order store unavailable" }
sub outer { inner() }

print STDERR "INFO perl worker\n";
outer();
