// An application that logs an error with java.util.logging: a message line, then the trace.
import java.util.logging.Level;
import java.util.logging.Logger;

public class LogTrace {
    public static void main(String[] args) {
        Logger log = Logger.getLogger("orders");
        log.info("order 42 received");
        try {
            Object o = null;
            o.toString();
        } catch (NullPointerException e) {
            log.log(Level.SEVERE, "order 42 failed", e);
        }
        log.info("order 43 received");
    }
}
