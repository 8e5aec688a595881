/* A throwaway test image for the docker module's integration test: a static HTTP server on
 * port 8080 that answers 200 to anything and exits at once on SIGTERM. Used only when the demo
 * image (orch-demo:1) has not been built yet; never pulled, built FROM scratch. */
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(void)
{
    static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);

    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0)
        return 1;
    for (;;) {
        char buf[1024];
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        (void)!read(c, buf, sizeof(buf));
        (void)!write(c, reply, sizeof(reply) - 1);
        close(c);
    }
}
