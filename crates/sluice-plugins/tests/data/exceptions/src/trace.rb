# An uncaught RuntimeError: Ruby prints the message line and `from` frames.
def charge(amount)
  raise "card declined for #{amount}"
end

def checkout
  charge(12)
end

$stderr.puts "INFO ruby worker"
checkout
