#include "route.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/netns.h"

int fm_router_open(fm_router *r, const char *netns, fm_error *e)
{
        int fd = fm_netns_socket(netns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, e);
        if (fd < 0)
                return fd;
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int err = errno;
                fm_close(fd);
                return fm_err(e, err, "binding netlink socket: %s", strerror(err));
        }
        r->fd = fd;
        r->seq = (uint32_t)time(NULL);
        return 0;
}

void fm_router_close(fm_router *r)
{
        if (r && r->fd >= 0)
                r->fd = fm_close(r->fd);
}

static int talk(fm_router *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, fm_error *e)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlh->nlmsg_seq = ++r->seq;
        if (send(r->fd, nlh, nlh->nlmsg_len, 0) < 0)
                return fm_err(e, errno, "netlink send: %s", strerror(errno));
        for (;;) {
                ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
                if (n < 0)
                        return fm_err(e, errno, "netlink recv: %s", strerror(errno));
                int q = mnl_cb_run(buf, (size_t)n, r->seq, 0, cb, data);
                if (q == MNL_CB_ERROR)
                        return fm_err(e, errno, "%s", strerror(errno));
                if (q <= MNL_CB_STOP)
                        return 0;
        }
}

static struct nlmsghdr *route_msg(char *buf, uint16_t type, uint16_t flags, const char *dst, fm_error *e)
{
        struct in_addr d;
        if (inet_pton(AF_INET, dst, &d) != 1) {
                fm_err(e, EINVAL, "bad IPv4 address `%s'", dst);
                return NULL;
        }
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
        rtm->rtm_family = AF_INET;
        rtm->rtm_dst_len = 32;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        mnl_attr_put_u32(nlh, RTA_DST, d.s_addr);
        return nlh;
}

int fm_router_set(fm_router *r, const char *dst, const char *gw, fm_error *e)
{
        char buf[512];
        struct in_addr g;
        if (inet_pton(AF_INET, gw, &g) != 1)
                return fm_err(e, EINVAL, "bad IPv4 gateway `%s'", gw);
        struct nlmsghdr *nlh = route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, dst, e);
        if (!nlh)
                return -EINVAL;
        mnl_attr_put_u32(nlh, RTA_GATEWAY, g.s_addr);
        int q = talk(r, nlh, NULL, NULL, e);
        return q < 0 ? fm_err_wrap(e, "routing %s via %s", dst, gw) : 0;
}

int fm_router_del(fm_router *r, const char *dst, fm_error *e)
{
        char buf[512];
        struct nlmsghdr *nlh = route_msg(buf, RTM_DELROUTE, NLM_F_ACK, dst, e);
        if (!nlh)
                return -EINVAL;
        ((struct rtmsg *)mnl_nlmsg_get_payload(nlh))->rtm_scope = RT_SCOPE_NOWHERE;
        int q = talk(r, nlh, NULL, NULL, e);
        if (q == -ESRCH)
                return 0;
        return q < 0 ? fm_err_wrap(e, "removing route to %s", dst) : 0;
}

struct get_ctx {
        uint32_t dst;
        uint32_t gw;
        bool found;
};

static int get_attr_cb(const struct nlattr *a, void *data)
{
        const struct nlattr **tb = data;
        int type = mnl_attr_get_type(a);
        if (type <= RTA_MAX)
                tb[type] = a;
        return MNL_CB_OK;
}

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
        struct get_ctx *c = data;
        struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *tb[RTA_MAX + 1] = {0};
        if (rtm->rtm_dst_len != 32 || rtm->rtm_table != RT_TABLE_MAIN)
                return MNL_CB_OK;
        mnl_attr_parse(nlh, sizeof(*rtm), get_attr_cb, tb);
        if (tb[RTA_DST] && mnl_attr_get_u32(tb[RTA_DST]) == c->dst && tb[RTA_GATEWAY]) {
                c->gw = mnl_attr_get_u32(tb[RTA_GATEWAY]);
                c->found = true;
        }
        return MNL_CB_OK;
}

int fm_router_get(fm_router *r, const char *dst, char *gw, size_t gwlen, fm_error *e)
{
        char buf[512];
        struct in_addr d;
        if (inet_pton(AF_INET, dst, &d) != 1)
                return fm_err(e, EINVAL, "bad IPv4 address `%s'", dst);
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETROUTE;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
        rtm->rtm_family = AF_INET;
        struct get_ctx c = {.dst = d.s_addr};
        int q = talk(r, nlh, get_cb, &c, e);
        if (q < 0)
                return q;
        if (!c.found)
                return fm_err(e, ENOENT, "no route to %s in the core", dst);
        struct in_addr g = {.s_addr = c.gw};
        inet_ntop(AF_INET, &g, gw, (socklen_t)gwlen);
        return 0;
}
