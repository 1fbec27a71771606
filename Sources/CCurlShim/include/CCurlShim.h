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

#endif
