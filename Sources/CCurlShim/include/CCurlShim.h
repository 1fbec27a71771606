#ifndef CCURLSHIM_H
#define CCURLSHIM_H

#include <curl/curl.h>

/// Non-variadic forms of curl_easy_setopt / curl_easy_getinfo, which Swift cannot call.
CURLcode CCurlShim_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode CCurlShim_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode CCurlShim_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode CCurlShim_setopt_write_function(CURL *handle,
    size_t (*callback)(char *data, size_t size, size_t count, void *context));
CURLcode CCurlShim_setopt_header_function(CURL *handle,
    size_t (*callback)(char *data, size_t size, size_t count, void *context));
CURLcode CCurlShim_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode CCurlShim_getinfo_double(CURL *handle, CURLINFO info, double *value);

/// A libcurl share handle (TLS session cache and DNS cache) with thread-safe locking: one
/// mutex per kind of shared data. NULL when out of memory. Free only after every easy
/// handle using it is cleaned up.
struct CCurlShimShare;
struct CCurlShimShare *CCurlShim_share_new(void);
void CCurlShim_share_free(struct CCurlShimShare *shared);
CURLcode CCurlShim_setopt_share(CURL *handle, struct CCurlShimShare *shared);

#endif
