// pgjdbc through seedproxy over TLS: connects with the URL and properties given, prints the
// current user and whether the upstream backend is on TLS, or the error. Run by test_tls_drivers.py.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Properties;

public class TlsProbe {
  public static void main(String[] args) {
    Properties props = new Properties();
    for (int i = 1; i + 1 < args.length; i += 2) props.setProperty(args[i], args[i + 1]);
    try (Connection conn = DriverManager.getConnection(args[0], props);
        ResultSet rs = conn.createStatement().executeQuery(
            "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()")) {
      rs.next();
      System.out.println("ok " + rs.getString(1) + " " + rs.getBoolean(2));
    } catch (Exception e) {
      System.out.println("error " + e.getMessage());
      System.exit(1);
    }
  }
}
