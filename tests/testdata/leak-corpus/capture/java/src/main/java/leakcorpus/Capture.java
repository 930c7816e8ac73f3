package leakcorpus;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.ThreadContext;

/**
 * Prints the log4j2 JSON lines of the leak corpus.
 *
 * <p>Strategy: log4j2's own JsonTemplateLayout writes them (see log4j2.xml): one appender
 * with the bundled ECS template (EcsLayout.json), one with the bundled JsonLayout.json
 * template. A failed request is logged the way a servlet filter and a handler do it: the
 * request's headers, client address, the user and a context map in the ThreadContext
 * (MDC), the message naming a user, and the exception. Personal values come from
 * ../plants.tsv; the lines go to the files named by the system properties
 * leakcorpus.ecs and leakcorpus.jsonlayout.
 */
public final class Capture {
    private Capture() {
    }

    private static Map<String, String> readPlants() throws IOException {
        Map<String, String> out = new HashMap<>();
        for (String line : Files.readAllLines(Path.of("..", "plants.tsv"), StandardCharsets.UTF_8)) {
            String[] parts = line.split("\t", 3);
            if (parts.length == 3) {
                out.put(parts[0], parts[2].replace("\\n", "\n"));
            }
        }
        return out;
    }

    private static void logRequest(Logger logger, Map<String, String> plants) {
        java.util.function.Function<String, String> l = role -> plants.get("logger.log4j2." + role);
        ThreadContext.put("http.request.headers.authorization", "Bearer " + l.apply("bearer"));
        ThreadContext.put("http.request.headers.cookie", "sid=" + l.apply("cookie") + "; theme=dark");
        ThreadContext.put("http.request.headers.x-forwarded-for", l.apply("fwd_ip"));
        ThreadContext.put("client.ip", l.apply("remote_ip"));
        ThreadContext.put("user.id", l.apply("user_id"));
        ThreadContext.put("user.email", l.apply("user_email"));
        ThreadContext.put("user.name", l.apply("user_name"));
        ThreadContext.put("context.ip", l.apply("ctx_ip6"));
        ThreadContext.put("context.sessionId", l.apply("session"));
        ThreadContext.put("context.note", "client retried with password=" + l.apply("password"));
        ThreadContext.put("route", "/login");
        logger.info("request received");
        try {
            throw new IllegalStateException("no account for " + l.apply("err_email"));
        } catch (IllegalStateException e) {
            logger.error("login failed for " + l.apply("msg_email"), e);
        }
        ThreadContext.clearMap();
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> plants = readPlants();
        logRequest(LogManager.getLogger("ecs.leakcorpus.LoginFilter"), plants);
        logRequest(LogManager.getLogger("jsonlayout.leakcorpus.LoginFilter"), plants);
        LogManager.shutdown();
    }
}
