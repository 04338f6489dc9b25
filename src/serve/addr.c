/*
 * The front's --listen address: a numeric IPv4 or bracketed IPv6 address
 * and a port, parsed strictly (inet_pton, no names, no "1.2.3" shorthand).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "serve_internal.h"

/* "1.2.3.4:80" or "[::1]:80": a numeric address (inet_pton, strictly) and port. */
int serve_parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hostlen,
                       struct gmca_error *e)
{
        const char *colon, *h = s;
        size_t hl;
        long p = 0;
        int v6 = s[0] == '[';

        if (v6) {
                const char *rb = strchr(s, ']');

                if (rb == NULL || rb[1] != ':')
                        goto bad;
                h = s + 1;
                hl = (size_t)(rb - h);
                colon = rb + 1;
        } else {
                if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':') != NULL)
                        goto bad;
                hl = (size_t)(colon - s);
        }
        if (hl == 0 || hl >= hostlen || colon[1] == '\0' || strlen(colon + 1) > 5)
                goto bad;
        for (const char *d = colon + 1; *d != '\0'; d++) {
                if (*d < '0' || *d > '9')
                        goto bad;
                p = p * 10 + (*d - '0');
        }
        if (p > 65535)
                goto bad;
        memcpy(host, h, hl);
        host[hl] = '\0';
        memset(ss, 0, sizeof(*ss));
        if (v6) {
                struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;

                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)p);
                if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
                        goto bad;
        } else {
                struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;

                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)p);
                if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
                        goto bad;
        }
        return 0;
bad:
        return gmca_error_set(
            e, GMCA_ERR_INVALID,
            "--listen '%s': ADDR:PORT or [ADDR6]:PORT, numeric (port 0 picks one)", s);
}
