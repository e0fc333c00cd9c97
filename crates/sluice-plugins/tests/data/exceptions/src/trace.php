<?php
// An uncaught exception: PHP prints "PHP Fatal error:  Uncaught ...", the stack and "thrown in".
function charge($amount) {
    throw new Exception("card declined for " . $amount);
}
function checkout() {
    charge(12);
}
fwrite(STDERR, "INFO php worker\n");
checkout();
