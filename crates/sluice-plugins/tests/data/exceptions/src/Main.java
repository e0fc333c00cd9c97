// Throws an exception with a cause and a suppressed exception, uncaught, so the JVM prints the trace.
public class Main {
    static int parse(String s) {
        return Integer.parseInt(s);
    }

    static void handle(String order) {
        try {
            parse(order);
        } catch (NumberFormatException e) {
            IllegalStateException wrapped = new IllegalStateException("cannot handle order " + order, e);
            wrapped.addSuppressed(new RuntimeException("cleanup failed"));
            throw wrapped;
        }
    }

    public static void main(String[] args) {
        System.err.println("INFO starting order worker");
        handle("12x");
    }
}
