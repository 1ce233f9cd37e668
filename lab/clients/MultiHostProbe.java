// A tiny JDBC client for article §7.1: opens N connections through a
// multi-host jdbc:postgresql:// URL and prints, one JSON object per line,
// which server answered and whether it is in recovery.
//
// Run with the single-file source launcher (Java 11+), no build step:
//   java -cp /usr/share/java/postgresql.jar MultiHostProbe.java URL USER PASSWORD [COUNT]
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class MultiHostProbe {
    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: MultiHostProbe URL USER PASSWORD [COUNT]");
            System.exit(2);
        }
        int count = args.length > 3 ? Integer.parseInt(args[3]) : 1;
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("connectTimeout", "3");
        props.setProperty("ApplicationName", "patroni-lab-jdbc");
        int failures = 0;
        for (int i = 0; i < count; i++) {
            try (Connection c = DriverManager.getConnection(args[0], props);
                 Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("select host(inet_server_addr()), pg_is_in_recovery()")) {
                r.next();
                System.out.println("{\"address\": \"" + r.getString(1) + "\", \"in_recovery\": "
                        + r.getBoolean(2) + "}");
            } catch (SQLException e) {
                failures++;
                String msg = String.valueOf(e.getMessage()).replace("\\", "\\\\").replace("\"", "'");
                System.out.println("{\"error\": \"" + msg + "\"}");
            }
        }
        System.exit(failures == count ? 1 : 0);
    }
}
