// libxml2's HTML parser and XPath, from Debian's libxml2-dev.
#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
